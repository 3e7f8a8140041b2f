//! Reading the first sheet of an XLSX within [`ImportLimits`]: the archive is checked
//! part by part (count, true unpacked size, shared strings) before calamine opens it,
//! and the sheet's cells are streamed, so nothing is allocated for a declared size.
//!
//! calamine's own `worksheet_range` is not used: it allocates the whole rectangle from
//! the first used cell to the last, so cells at A1 and XFD1048576 cost ~550 GB. And its
//! workbook opening reserves the shared strings a file *declares*; hence the count here
//! first.

use std::io::{self, BufReader, Cursor, Read};

use calamine::{DataRef, Reader, Xlsx, XlsxError, open_workbook_from_rs};

use super::limits::{Budget, ImportLimits, MAX_XLSX_PARTS, ROW_COST, cell_cost, text_heap};
use super::{Cell, Table, TableRow, plain_text, start};
use crate::problems::Problems;

fn unreadable() -> Problems {
    Problems::file("无法读取该 XLSX 文件，请确认文件完好，或另存为 CSV")
}

pub(super) fn read_xlsx(bytes: &[u8], limits: &ImportLimits) -> Result<Option<Table>, Problems> {
    // An XLSX is stored compressed, ~10x for a roll: its budget is that of a CSV twice
    // its size (an ordinary roll of 200 000 rows peaks at ~18x its XLSX; tests/import_memory).
    let mut budget = Budget::new(limits, bytes.len().saturating_mul(2));
    check_archive(bytes, &mut budget)?;
    // calamine can panic on a malformed sheet (fuzzing found a dimension whose end
    // precedes its start: an overflow, caught in debug builds and wrapped in release).
    // Its state is dropped with the closure, so a panic is one more unreadable file.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_sheet(bytes, limits, &mut budget)
    }))
    .unwrap_or_else(|_| {
        tracing::info!("xlsx reader panicked");
        Err(unreadable())
    })
}

fn read_sheet(
    bytes: &[u8],
    limits: &ImportLimits,
    budget: &mut Budget,
) -> Result<Option<Table>, Problems> {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(|error| {
        tracing::info!(%error, "xlsx unreadable");
        unreadable()
    })?;
    let Some(sheet) = workbook.sheet_names().into_iter().next() else {
        return Err(Problems::file("XLSX 文件中没有工作表"));
    };
    let mut reader = match workbook.worksheet_cells_reader(&sheet) {
        Ok(reader) => reader,
        // A chart sheet first: no cells, as calamine's ranges read it.
        Err(XlsxError::NotAWorksheet(_)) => return Ok(None),
        Err(error) => {
            tracing::info!(%error, "xlsx first sheet unreadable");
            return Err(unreadable());
        }
    };
    // The declared extent is a cheap early refusal; the cells are checked again as read,
    // since a sheet may declare less than it holds.
    let declared = reader.dimensions();
    if declared.end.0 as usize >= limits.max_rows {
        return Err(limits.too_many_rows());
    }
    if declared.end.1.saturating_sub(declared.start.1) as usize >= limits.max_columns {
        return Err(limits.too_many_columns());
    }
    let mut rows: Vec<SheetRow> = Vec::new();
    let mut in_order = true;
    let (mut first_col, mut last_col) = (u32::MAX, 0);
    loop {
        let cell = match reader.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(error) => {
                tracing::info!(%error, "xlsx cell unreadable");
                return Err(unreadable());
            }
        };
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (row, col) = cell.get_position();
        if row as usize >= limits.max_rows {
            return Err(limits.too_many_rows());
        }
        first_col = first_col.min(col);
        last_col = last_col.max(col);
        if (last_col - first_col) as usize >= limits.max_columns {
            return Err(limits.too_many_columns());
        }
        let value = Cell::from(cell.get_value().clone());
        match rows.last_mut() {
            Some(last) if last.row == row => {
                let added = last.place(col, value.clone());
                budget.charge(added * std::mem::size_of::<Cell>() + text_heap(&value))?;
            }
            last => {
                if let Some(last) = last {
                    in_order &= last.row < row;
                    // Growth slack is released once a row is complete.
                    last.cells.shrink_to_fit();
                }
                budget.charge(ROW_COST + cell_cost(&value))?;
                rows.push(SheetRow {
                    row,
                    first: col,
                    cells: vec![value],
                });
            }
        }
    }
    drop(reader);
    if !in_order {
        rows = merge(rows, budget)?;
    }
    // Every row counted from the sheet's first used column, as calamine's ranges did.
    let width = (last_col.saturating_sub(first_col) + 1) as usize;
    let shifts: usize = rows.iter().map(|r| (r.first - first_col) as usize).sum();
    budget.charge((shifts + width) * std::mem::size_of::<Cell>())?;
    let mut table: Option<Table> = None;
    for sheet_row in rows {
        let mut cells = sheet_row.cells;
        if cells.iter().all(|cell| plain_text(cell).is_empty()) {
            continue;
        }
        let shift = (sheet_row.first - first_col) as usize;
        cells.splice(0..0, std::iter::repeat_n(Cell::Empty, shift));
        let line = sheet_row.row as usize + 1;
        match &mut table {
            None => {
                cells.resize(width.max(cells.len()), Cell::Empty);
                table = Some(start(line, &cells));
            }
            Some(table) => table.rows.push(TableRow { line, cells }),
        }
    }
    Ok(table)
}

/// One sheet row as read: its cells from column `first` on.
struct SheetRow {
    row: u32,
    first: u32,
    cells: Vec<Cell>,
}

impl SheetRow {
    /// Puts `value` at `col` (a later cell at one place wins, as in calamine); returns
    /// how many cells the row grew by.
    fn place(&mut self, col: u32, value: Cell) -> usize {
        let before = self.cells.len();
        if col < self.first {
            let gap = (self.first - col) as usize;
            self.cells
                .splice(0..0, std::iter::repeat_n(Cell::Empty, gap));
            self.first = col;
        }
        let at = (col - self.first) as usize;
        if at >= self.cells.len() {
            self.cells.resize(at + 1, Cell::Empty);
        }
        self.cells[at] = value;
        self.cells.len() - before
    }
}

/// Rows of a sheet whose cells came out of order, sorted and with each row's pieces
/// put together (Excel never writes such a sheet; other tools may).
fn merge(mut rows: Vec<SheetRow>, budget: &mut Budget) -> Result<Vec<SheetRow>, Problems> {
    // Stable: of two cells at one place the later in the file wins.
    rows.sort_by_key(|r| r.row);
    let mut merged: Vec<SheetRow> = Vec::with_capacity(rows.len());
    for piece in rows {
        match merged.last_mut() {
            Some(last) if last.row == piece.row => {
                for (col, value) in (piece.first..).zip(piece.cells) {
                    let added = last.place(col, value);
                    budget.charge(added * std::mem::size_of::<Cell>())?;
                }
            }
            _ => merged.push(piece),
        }
    }
    Ok(merged)
}

/// Checks the archive before calamine reads it: how many parts, what they truly unpack
/// to (declared sizes can lie), and what the shared strings will take.
fn check_archive(bytes: &[u8], budget: &mut Budget) -> Result<(), Problems> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
        tracing::info!(%error, "xlsx archive unreadable");
        unreadable()
    })?;
    if archive.len() > MAX_XLSX_PARTS {
        return Err(Problems::file(format!(
            "XLSX 文件包含的部件超过上限 {MAX_XLSX_PARTS} 个"
        )));
    }
    let limit = budget.limit();
    let too_large = || {
        Problems::file(format!(
            "XLSX 文件解压后超过上限 {} MB，请删除多余的空行、空列，或分批导入",
            limit / (1024 * 1024)
        ))
    };
    let mut unpacked: usize = 0;
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).map_err(|error| {
            tracing::info!(%error, "xlsx part unreadable");
            unreadable()
        })?;
        let remaining = limit - unpacked;
        if part.size() > remaining as u64 {
            return Err(too_large());
        }
        // A part whose name does not decode is read as any other part.
        let shared_strings = part
            .name()
            .is_ok_and(|name| name.to_ascii_lowercase().ends_with("sharedstrings.xml"));
        let mut counted = Counted {
            inner: (&mut part).take(remaining as u64 + 1),
            read: 0,
        };
        let strings = if shared_strings {
            Some(count_shared_strings(&mut counted)?)
        } else {
            io::copy(&mut counted, &mut io::sink()).map_err(|error| {
                tracing::info!(%error, "xlsx part does not unpack");
                unreadable()
            })?;
            None
        };
        if counted.read > remaining {
            return Err(too_large());
        }
        unpacked += counted.read;
        if let Some(strings) = strings {
            // calamine reserves the declared count and grows past it by doubling; each
            // string's text is at most the part's size.
            let entries = strings.declared.max(strings.counted).saturating_mul(2);
            budget.charge(
                entries
                    .saturating_mul(std::mem::size_of::<String>())
                    .saturating_add(counted.read),
            )?;
        }
    }
    Ok(())
}

struct SharedStrings {
    /// `uniqueCount` as the file gives it.
    declared: usize,
    /// `<si>` elements actually present.
    counted: usize,
}

fn count_shared_strings(part: impl Read) -> Result<SharedStrings, Problems> {
    use quick_xml::events::Event;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(part));
    let mut strings = SharedStrings {
        declared: 0,
        counted: 0,
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                "sst" => {
                    // What calamine reserves; a value it cannot parse reserves nothing.
                    strings.declared = e
                        .try_get_attribute("uniqueCount")
                        .ok()
                        .flatten()
                        .and_then(|a| a.value.parse().ok())
                        .unwrap_or(0);
                }
                "si" => strings.counted += 1,
                _ => {}
            },
            Ok(Event::Eof) => return Ok(strings),
            Ok(_) => {}
            Err(error) => {
                tracing::info!(%error, "xlsx shared strings unreadable");
                return Err(unreadable());
            }
        }
    }
}

/// A reader that counts what passes through it.
struct Counted<R> {
    inner: R,
    read: usize,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}
