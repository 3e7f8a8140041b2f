//! Reading a table that county staff upload — CSV in UTF-8 or GBK/GB18030, or XLSX —
//! into its header and its data rows, each numbered as a spreadsheet shows it, with
//! every problem named by row and column. What the columns mean is the caller's job;
//! this module only gets the cells out faithfully.
//!
//! Whatever a file holds, reading it stays within [`ImportLimits`] (rows, columns, and
//! memory a small multiple of the file's size): see [`limits`].
//!
//! XLSX parsing is CPU work: call [`read_table`] from `spawn_blocking`.

pub mod limits;
mod xlsx;

pub use limits::ImportLimits;
use limits::{Budget, ROW_COST, cell_cost};

use crate::problems::Problems;

/// A cell as read: text for CSV, typed for XLSX (numbers, dates).
pub use calamine::Data as Cell;

pub use crate::problems::{FILE, ROW};

/// One data row: its spreadsheet line and its cells (CSV cells as trimmed text).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub line: usize,
    pub cells: Vec<Cell>,
}

/// A file's first non-blank row as headers, and every non-blank row after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header_line: usize,
    pub headers: Vec<String>,
    pub rows: Vec<TableRow>,
}

/// A header as compared: no spaces, no required-column star, and no unit in brackets, so
/// `金额（元）`, `金额(元)` and `* 金额` all read `金额`.
pub fn normalise_header(header: &str) -> String {
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.trim_start_matches(['*', '＊']);
    let compact = compact
        .strip_suffix("（元）")
        .or_else(|| compact.strip_suffix("(元)"))
        .unwrap_or(compact);
    compact.to_owned()
}

/// Reads a file: XLSX if it is a ZIP archive, CSV otherwise. Blank rows are skipped;
/// a file without a header is a problem (one without data rows is the caller's call),
/// and so is one beyond `limits`. Data rows end at their last non-empty cell.
pub fn read_table(file_name: &str, bytes: &[u8], limits: &ImportLimits) -> Result<Table, Problems> {
    let lower_name = file_name.trim().to_lowercase();
    let table = if bytes.starts_with(b"\xD0\xCF\x11\xE0") || lower_name.ends_with(".xls") {
        // The old binary format, or (as some systems export) an HTML page named .xls.
        return Err(Problems::file("不支持 .xls，请另存为 .xlsx 或 CSV"));
    } else if bytes.starts_with(b"PK\x03\x04") {
        xlsx::read_xlsx(bytes, limits)?
    } else if lower_name.ends_with(".xlsx") {
        return Err(Problems::file(
            "文件不是有效的 .xlsx 文件，请在 Excel 中重新另存为 .xlsx 或 CSV",
        ));
    } else {
        read_csv(bytes, limits)?
    };
    table.ok_or_else(|| Problems::file("文件是空的，没有表头"))
}

/// Starts a table at its header row.
fn start(line: usize, cells: &[Cell]) -> Table {
    Table {
        header_line: line,
        headers: cells.iter().map(plain_text).collect(),
        rows: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

/// Decodes CSV text: UTF-8 (with or without BOM), else GB18030, which covers GBK and
/// GB2312 — what Excel on a Chinese Windows saves as "CSV".
fn decode_text(bytes: &[u8]) -> Result<String, Problems> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    // No BOM sniffing: a UTF-16 file (Excel "Unicode text") is refused rather than decoded
    // and then half-read as comma-separated text.
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(Problems::file(
            "文件编码无法识别，请使用 UTF-8 或 GBK 编码的 CSV，或 XLSX",
        ));
    }
    Ok(text.into_owned())
}

fn read_csv(bytes: &[u8], limits: &ImportLimits) -> Result<Option<Table>, Problems> {
    let mut budget = Budget::new(limits, bytes.len());
    let text = decode_text(bytes)?;
    budget.charge(text.capacity())?;
    // The header is read as an ordinary record so that leading blank lines and line
    // numbers work the same way as for XLSX.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut table: Option<Table> = None;
    let mut problems = Problems::default();
    let mut lines = LineCounter::new(&text);
    let mut kept = 0;
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| lines.line_at(p.byte()));
                problems.add(line, ROW, "无法解析该行");
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        // Trailing empty cells are not kept: `a,,,,` costs what `a` does.
        let width = (0..record.len())
            .rev()
            .find(|&at| record.get(at).is_some_and(|cell| !cell.trim().is_empty()))
            .map_or(0, |last| last + 1);
        if width == 0 {
            continue;
        }
        // Both: records split by a bare CR share a line number.
        kept += 1;
        if line > limits.max_rows || kept > limits.max_rows {
            return Err(limits.too_many_rows());
        }
        if width > limits.max_columns {
            return Err(limits.too_many_columns());
        }
        let cells: Vec<Cell> = record
            .iter()
            .take(width)
            .map(|cell| Cell::String(cell.trim().to_owned()))
            .collect();
        budget.charge(ROW_COST + cells.iter().map(cell_cost).sum::<usize>())?;
        match &mut table {
            None => table = Some(start(line, &cells)),
            Some(table) => table.rows.push(TableRow { line, cells }),
        }
    }
    problems.into_result(table)
}

/// Turns a record's byte offset into the spreadsheet row it starts on.
///
/// csv's own line count is not used: with CRLF endings a record's position is taken
/// before the previous record's `\n` is consumed, so every row would be one line early.
/// Blank lines, which csv skips, still count, as they do in a spreadsheet.
struct LineCounter<'a> {
    text: &'a [u8],
    scanned: usize,
    newlines: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter {
            text: text.as_bytes(),
            scanned: 0,
            newlines: 0,
        }
    }

    /// The 1-based line of the record at `byte`; offsets must not decrease.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte).map_or(self.text.len(), |b| b.min(self.text.len()));
        // Line ends left over from the previous record (and skipped blank lines) are not
        // part of this one.
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let start = start.max(self.scanned);
        self.newlines += self.text[self.scanned..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.scanned = start;
        self.newlines + 1
    }
}

// ---------------------------------------------------------------------------------------
// XLSX
// ---------------------------------------------------------------------------------------

/// Any cell as text: strings trimmed, whole numbers without `.0`, dates as `YYYY-MM-DD`,
/// errors and empty cells as nothing.
pub fn plain_text(cell: &Cell) -> String {
    match cell {
        Cell::String(text) => text.trim().to_owned(),
        Cell::Int(value) => value.to_string(),
        Cell::Float(value) if value.fract() == 0.0 && value.abs() < 1e15 => {
            format!("{value:.0}")
        }
        Cell::Float(value) => value.to_string(),
        Cell::Bool(value) => value.to_string(),
        Cell::DateTime(datetime) => {
            let (year, month, day, ..) = datetime.to_ymd_hms_milli();
            format!("{year:04}-{month:02}-{day:02}")
        }
        Cell::DateTimeIso(text) | Cell::DurationIso(text) => text.trim().to_owned(),
        Cell::Error(_) | Cell::Empty => String::new(),
    }
}

/// An amount in yuan typed as a number. Binary floats cannot hold 170.1 exactly, so a
/// value within a millionth of a yuan of whole fen is written as those fen (`170.5` →
/// `170.50`); any other value keeps its full digits so the amount parser refuses it
/// (`170.555`).
pub fn amount_text(value: f64) -> String {
    let fen = (value * 100.0).round();
    // 1e-6 yuan is 1e-4 fen; 1e15 fen is far beyond any amount the parser accepts.
    if (value * 100.0 - fen).abs() < 1e-4 && fen.abs() < 1e15 {
        // Exact: `fen` is a whole number below 2^53.
        let fen = fen as i64;
        let sign = if fen < 0 { "-" } else { "" };
        let abs = fen.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    } else {
        value.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_their_spreadsheet_lines() {
        let text = "\n项目编号,名称\r\nA,甲\r\n\r\n , \r\nB,乙\r\n";
        let table = read_table("t.csv", text.as_bytes(), &ImportLimits::default()).unwrap();
        assert_eq!(table.header_line, 2);
        assert_eq!(table.headers, ["项目编号", "名称"]);
        let lines: Vec<usize> = table.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 6]);
        assert_eq!(plain_text(&table.rows[1].cells[1]), "乙");
    }

    #[test]
    fn an_empty_file_has_no_header() {
        assert_eq!(
            read_table("t.csv", b" \n", &ImportLimits::default())
                .unwrap_err()
                .listed(),
            [crate::problems::FileProblem::new(
                0,
                FILE,
                "文件是空的，没有表头"
            )]
        );
    }

    #[test]
    fn headers_normalise_units_stars_and_spaces() {
        for header in ["金额", "金额（元）", "金额(元)", " * 金额 "] {
            assert_eq!(normalise_header(header), "金额", "{header}");
        }
    }

    #[test]
    fn amounts_are_written_exactly_to_the_fen() {
        assert_eq!(amount_text(170.5), "170.50");
        assert_eq!(amount_text(0.1 + 0.2), "0.30");
        assert_eq!(amount_text(1234.56), "1234.56");
        assert_eq!(amount_text(170.0), "170.00");
        assert_eq!(amount_text(-170.0), "-170.00");
        assert_eq!(amount_text(170.555), "170.555");
        assert_eq!(amount_text(1e20), "100000000000000000000");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod hostile_tests;
