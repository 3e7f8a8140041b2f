//! How much an uploaded table may hold, and the running count that keeps a reader
//! within it: rows, columns and the memory its cells take, checked before anything
//! is allocated for them.
//!
//! A file's size alone does not bound what reading it costs: a 2 KB XLSX can declare a
//! sheet of 17 billion cells or four billion shared strings, and a CSV of one-character
//! rows takes ~50 bytes of cells for every byte of file. So every reader charges what it
//! is about to hold against a budget of a small multiple of the file's size, and refuses
//! the file, naming the limit, when the charge would pass it.

use crate::config::{ConfigError, Env};

use crate::problems::Problems;

/// A budget this large is always allowed, so that small files are never refused for
/// their shape alone: ~100 000 ordinary rows fit in it.
pub const MEMORY_FLOOR: usize = 32 * 1024 * 1024;

/// At most this many parts in an XLSX archive; Excel writes about ten.
pub const MAX_XLSX_PARTS: usize = 1_000;

/// The limits an import is read within; configured once per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// The largest file accepted over the wire, in bytes.
    pub max_bytes: usize,
    /// The last spreadsheet row a table may use (header included).
    pub max_rows: usize,
    /// The widest a table may be, from its first used column to its last.
    pub max_columns: usize,
    /// What reading may hold (cells, shared strings, an XLSX's unpacked parts), as a
    /// multiple of the file's size, above [`MEMORY_FLOOR`].
    pub memory_factor: usize,
}

impl Default for ImportLimits {
    /// Sized to real rolls: a county's largest is a few hundred thousand rows of under
    /// twenty columns.
    fn default() -> Self {
        ImportLimits {
            max_bytes: 64 * 1024 * 1024,
            max_rows: 1_000_000,
            max_columns: 64,
            memory_factor: 16,
        }
    }
}

impl ImportLimits {
    /// Reads `HUIMIN_IMPORT_MAX_MB`, `HUIMIN_IMPORT_MAX_ROWS`, `HUIMIN_IMPORT_MAX_COLUMNS`
    /// and `HUIMIN_IMPORT_MEMORY_FACTOR`; `default_max_mb` is the service's own file size
    /// limit when the first is unset.
    pub fn from_env(env: &Env, default_max_mb: usize) -> Result<Self, ConfigError> {
        let defaults = ImportLimits::default();
        let limits = ImportLimits {
            max_bytes: env
                .parse_or("HUIMIN_IMPORT_MAX_MB", default_max_mb)?
                .saturating_mul(1024 * 1024),
            max_rows: env.parse_or("HUIMIN_IMPORT_MAX_ROWS", defaults.max_rows)?,
            max_columns: env.parse_or("HUIMIN_IMPORT_MAX_COLUMNS", defaults.max_columns)?,
            memory_factor: env.parse_or("HUIMIN_IMPORT_MEMORY_FACTOR", defaults.memory_factor)?,
        };
        for (name, value) in [
            ("HUIMIN_IMPORT_MAX_MB", limits.max_bytes),
            ("HUIMIN_IMPORT_MAX_ROWS", limits.max_rows),
            ("HUIMIN_IMPORT_MAX_COLUMNS", limits.max_columns),
            ("HUIMIN_IMPORT_MEMORY_FACTOR", limits.memory_factor),
        ] {
            if value == 0 {
                return Err(ConfigError::Malformed {
                    name,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(limits)
    }

    /// What reading a file of `file_len` bytes may hold.
    pub fn memory_budget(&self, file_len: usize) -> usize {
        self.memory_factor
            .saturating_mul(file_len)
            .saturating_add(MEMORY_FLOOR)
    }

    pub(super) fn too_many_rows(&self) -> Problems {
        Problems::file(format!("文件超过行数上限 {} 行，请分批导入", self.max_rows))
    }

    pub(super) fn too_many_columns(&self) -> Problems {
        Problems::file(format!("文件超过列数上限 {} 列", self.max_columns))
    }

    pub(super) fn too_much_content(&self) -> Problems {
        Problems::file(format!(
            "文件内容展开后超过上限（文件大小的 {} 倍），请删除多余的空行、空列，或分批导入",
            self.memory_factor
        ))
    }
}

/// The memory a reader has committed to hold, against its budget.
#[derive(Debug)]
pub(super) struct Budget {
    limits: ImportLimits,
    limit: usize,
    held: usize,
}

impl Budget {
    pub(super) fn new(limits: &ImportLimits, file_len: usize) -> Budget {
        Budget {
            limits: *limits,
            limit: limits.memory_budget(file_len),
            held: 0,
        }
    }

    /// The most it may hold, in bytes.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Counts `bytes` more as held, or refuses once the budget would be passed.
    pub(super) fn charge(&mut self, bytes: usize) -> Result<(), Problems> {
        self.held = self.held.saturating_add(bytes);
        if self.held > self.limit {
            return Err(self.limits.too_much_content());
        }
        Ok(())
    }
}

/// What a cell's text takes on the heap: glibc's malloc gives even one byte a 32-byte
/// chunk, and adds 8 bytes to larger ones in steps of 16 (mimalloc takes less).
pub(super) fn text_heap(cell: &super::Cell) -> usize {
    use super::Cell;
    match cell {
        Cell::String(text) | Cell::DateTimeIso(text) | Cell::DurationIso(text)
            if text.capacity() > 0 =>
        {
            (text.capacity() + 8).next_multiple_of(16).max(32)
        }
        _ => 0,
    }
}

/// What a cell costs to hold: the cell itself and its text.
pub(super) fn cell_cost(cell: &super::Cell) -> usize {
    std::mem::size_of::<super::Cell>() + text_heap(cell)
}

/// What a row costs besides its cells: its entry in the rows vector, counted twice
/// because a growing vector briefly holds its old buffer and a new one of twice the size.
pub(super) const ROW_COST: usize = 2 * std::mem::size_of::<super::TableRow>();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_environment_with_defaults() {
        let env = Env::from_pairs([("HUIMIN_IMPORT_MAX_ROWS", "500000")]);
        let limits = ImportLimits::from_env(&env, 128).expect("valid");
        assert_eq!(limits.max_rows, 500_000);
        assert_eq!(limits.max_columns, 64);
        assert_eq!(limits.max_bytes, 128 * 1024 * 1024);
        let env = Env::from_pairs([("HUIMIN_IMPORT_MAX_COLUMNS", "0")]);
        let error = ImportLimits::from_env(&env, 64).expect_err("zero columns");
        assert!(
            error.to_string().contains("HUIMIN_IMPORT_MAX_COLUMNS"),
            "{error}"
        );
    }

    #[test]
    fn a_budget_refuses_once_passed() {
        let limits = ImportLimits::default();
        let mut budget = Budget::new(&limits, 0);
        assert!(budget.charge(MEMORY_FLOOR).is_ok());
        let refused = budget.charge(1).expect_err("over the floor");
        assert!(
            refused.listed()[0].message.contains("16 倍"),
            "{:?}",
            refused.listed()[0]
        );
    }
}
