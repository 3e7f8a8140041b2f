//! Reading a payment roll file (花名册) — CSV in UTF-8 or GBK/GB18030, or XLSX — into raw
//! text rows, with every problem named by spreadsheet row and column. Checking the values
//! is the caller's job ([`crate::domain`]); this module only gets the text out faithfully.
//!
//! The file itself (encodings, XLSX, line numbers) is read by [`huimin_kit::table`];
//! this module maps its columns to a roll's fields. XLSX parsing is CPU work: call
//! [`read_roll`] from `spawn_blocking`.

use huimin_kit::{
    problems::{FileProblem, Problems},
    table::{Cell as Data, amount_text, normalise_header, plain_text},
};

/// The columns of a roll, by their Chinese headers. Problems name columns by these.
pub mod column {
    pub const NAME: &str = "姓名";
    pub const ID_NUMBER: &str = "身份证号";
    pub const VILLAGE_CODE: &str = "村代码";
    pub const PROGRAM_CODE: &str = "项目代码";
    pub const PERIOD: &str = "发放期间";
    pub const AMOUNT: &str = "金额";
    pub const BANK_ACCOUNT: &str = "银行账号";
    pub const KIND: &str = "类型";
    pub use huimin_kit::table::{FILE, ROW};
}

/// One data row of a roll, cells as trimmed text; absent optional columns are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRow {
    /// The row number a spreadsheet shows (the header is usually line 1).
    pub line: usize,
    pub name: String,
    pub id_number: String,
    pub village_code: String,
    pub program_code: String,
    pub period: String,
    pub amount: String,
    pub bank_account: String,
    pub kind: String,
}

/// The fields of [`RawRow`] a column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    IdNumber,
    VillageCode,
    ProgramCode,
    Period,
    Amount,
    BankAccount,
    Kind,
}

/// Each field's canonical header, whether it is required, and the other headers
/// departments use for it (already normalised: see [`normalise_header`]).
const FIELDS: [(Field, &str, bool, &[&str]); 8] = [
    (Field::Name, column::NAME, true, &[]),
    (
        Field::IdNumber,
        column::ID_NUMBER,
        true,
        &["身份证号码", "公民身份号码", "身份证"],
    ),
    (Field::VillageCode, column::VILLAGE_CODE, true, &[]),
    (Field::ProgramCode, column::PROGRAM_CODE, true, &[]),
    (Field::Period, column::PERIOD, true, &["期间"]),
    (Field::Amount, column::AMOUNT, true, &["发放金额"]),
    (
        Field::BankAccount,
        column::BANK_ACCOUNT,
        false,
        &["银行卡号"],
    ),
    (Field::Kind, column::KIND, false, &[]),
];

fn field_of(header: &str) -> Option<Field> {
    let header = normalise_header(header);
    FIELDS
        .iter()
        .find(|(_, name, _, aliases)| *name == header || aliases.contains(&header.as_str()))
        .map(|(field, ..)| *field)
}

fn canonical_name(field: Field) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, ..)| *f == field)
        .map_or(column::FILE, |(_, name, ..)| name)
}

/// Which cell index holds each field, found from the header row.
struct Columns {
    positions: Vec<(Field, usize)>,
}

impl Columns {
    /// Maps the header row; a missing required column or a field named twice is a problem
    /// at `line`.
    fn from_header(headers: &[String], line: usize) -> Result<Columns, Problems> {
        let mut positions: Vec<(Field, usize)> = Vec::new();
        let mut problems = Problems::default();
        for (index, header) in headers.iter().enumerate() {
            let Some(field) = field_of(header) else {
                continue;
            };
            if positions.iter().any(|(f, _)| *f == field) {
                let name = canonical_name(field);
                let message = format!("有多列都对应「{name}」，请只保留一列");
                let problem = FileProblem::new(line, name, message);
                if !problems.listed().contains(&problem) {
                    problems.add(line, name, problem.message);
                }
                continue;
            }
            positions.push((field, index));
        }
        for (field, name, required, _) in FIELDS {
            if required && !positions.iter().any(|(f, _)| *f == field) {
                problems.add(line, name, format!("缺少列「{name}」"));
            }
        }
        problems.into_result(Columns { positions })
    }

    fn field_at(&self, index: usize) -> Option<Field> {
        self.positions
            .iter()
            .find(|(_, i)| *i == index)
            .map(|(field, _)| *field)
    }
}

fn set(row: &mut RawRow, field: Field, value: String) {
    let slot = match field {
        Field::Name => &mut row.name,
        Field::IdNumber => &mut row.id_number,
        Field::VillageCode => &mut row.village_code,
        Field::ProgramCode => &mut row.program_code,
        Field::Period => &mut row.period,
        Field::Amount => &mut row.amount,
        Field::BankAccount => &mut row.bank_account,
        Field::Kind => &mut row.kind,
    };
    *slot = value;
}

/// Reads a roll file: XLSX if it is a ZIP archive, CSV otherwise. Returns every data row
/// (blank rows skipped), or every problem that stops the file from being read.
pub fn read_roll(
    file_name: &str,
    bytes: &[u8],
    limits: &huimin_kit::table::ImportLimits,
) -> Result<Vec<RawRow>, Problems> {
    let table = huimin_kit::table::read_table(file_name, bytes, limits)?;
    let columns = Columns::from_header(&table.headers, table.header_line)?;
    let mut problems = Problems::default();
    let mut rows = Vec::with_capacity(table.rows.len());
    for cells in table.rows {
        let line = cells.line;
        let mut row = RawRow {
            line,
            ..RawRow::default()
        };
        for (index, cell) in cells.cells.iter().enumerate() {
            let Some(field) = columns.field_at(index) else {
                continue;
            };
            match cell_text(field, cell) {
                Ok(text) => set(&mut row, field, text),
                Err(message) => problems.add(line, canonical_name(field), message),
            }
        }
        rows.push(row);
    }
    let rows = problems.into_result(rows)?;
    if rows.is_empty() {
        return Err(Problems::file("文件中没有数据行"));
    }
    Ok(rows)
}

/// A cell as text for the given column, or why it cannot be read faithfully.
fn cell_text(field: Field, cell: &Data) -> Result<String, &'static str> {
    match (field, cell) {
        // Excel keeps 15 significant digits: an 18-digit ID number (or a long card
        // number) typed as a number has already lost its last digits.
        (Field::IdNumber, Data::Float(_) | Data::Int(_)) if integer_digits(cell) >= 15 => {
            Err("身份证号请以文本格式保存（数字格式会丢失末位）")
        }
        (Field::BankAccount, Data::Float(_) | Data::Int(_)) if integer_digits(cell) >= 16 => {
            Err("银行账号请以文本格式保存（数字格式会丢失末位）")
        }
        (Field::Amount, Data::Float(value)) => Ok(amount_text(*value)),
        (Field::Period, Data::DateTime(datetime)) if datetime.is_datetime() => {
            let (year, month, ..) = datetime.to_ymd_hms_milli();
            Ok(format!("{year:04}-{month:02}"))
        }
        (Field::Period, Data::DateTimeIso(iso)) => Ok(iso_month(iso)),
        _ => Ok(plain_text(cell)),
    }
}

/// How many digits a numeric cell has before the decimal point.
fn integer_digits(cell: &Data) -> usize {
    match cell {
        Data::Int(value) => value.unsigned_abs().to_string().len(),
        Data::Float(value) => format!("{:.0}", value.abs().trunc()).len(),
        _ => 0,
    }
}

/// `2026-07-01T00:00:00` → `2026-07`; anything else unchanged.
fn iso_month(iso: &str) -> String {
    let iso = iso.trim();
    match iso.get(..7) {
        Some(month)
            if iso.as_bytes().get(4) == Some(&b'-')
                && iso.as_bytes().get(7).is_none_or(|b| *b == b'-') =>
        {
            month.to_owned()
        }
        _ => iso.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use huimin_kit::table::ImportLimits;

    const HEADER: &str = "姓名,身份证号,村代码,项目代码,发放期间,金额,银行账号,类型";
    const ROW: &str = "张三,11010519491231002X,450923100201,DB01,2026-07,170.50,6228480012345678,";

    fn problems(result: Result<Vec<RawRow>, Problems>) -> Vec<(usize, String, String)> {
        result
            .unwrap_err()
            .listed()
            .iter()
            .map(|p| (p.line, p.column.clone(), p.message.clone()))
            .collect()
    }

    #[test]
    fn utf8_csv_with_bom_reads_every_column() {
        let text = format!("\u{FEFF}{HEADER}\n{ROW}\n");
        let rows = read_roll("roll.csv", text.as_bytes(), &ImportLimits::default()).unwrap();
        assert_eq!(
            rows,
            [RawRow {
                line: 2,
                name: "张三".to_owned(),
                id_number: "11010519491231002X".to_owned(),
                village_code: "450923100201".to_owned(),
                program_code: "DB01".to_owned(),
                period: "2026-07".to_owned(),
                amount: "170.50".to_owned(),
                bank_account: "6228480012345678".to_owned(),
                kind: String::new(),
            }]
        );
    }

    #[test]
    fn gbk_csv_decodes() {
        let text = format!(
            "{HEADER}\r\n{ROW}\r\n李四,110105194912310021,450923100201,DB01,2026-07,170,,冲正\r\n"
        );
        let (bytes, _, _) = encoding_rs::GBK.encode(&text);
        assert!(std::str::from_utf8(&bytes).is_err());
        let rows = read_roll("花名册.csv", &bytes, &ImportLimits::default()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name, "李四");
        assert_eq!(rows[1].kind, "冲正");
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn undecodable_bytes_are_one_problem() {
        let bytes = b"\xFF\xFE\x00\x01garbage\x80";
        assert_eq!(
            problems(read_roll("roll.csv", bytes, &ImportLimits::default())),
            [(
                0,
                "文件".to_owned(),
                "文件编码无法识别，请使用 UTF-8 或 GBK 编码的 CSV，或 XLSX".to_owned()
            )]
        );
    }

    #[test]
    fn header_aliases_and_units_are_recognised() {
        let text = "备注, *姓名 ,公民身份号码,村代码,项目代码,期间,发放金额（元）,银行卡号\n\
                    x,张三,11010519491231002X,450923100201,DB01,2026年7月,170,6228 4800 1234 5678\n";
        let rows = read_roll("roll.csv", text.as_bytes(), &ImportLimits::default()).unwrap();
        assert_eq!(rows[0].name, "张三");
        assert_eq!(rows[0].id_number, "11010519491231002X");
        assert_eq!(rows[0].period, "2026年7月");
        assert_eq!(rows[0].amount, "170");
        assert_eq!(rows[0].bank_account, "6228 4800 1234 5678");
        assert_eq!(rows[0].kind, "");
        for header in ["金额", "金额（元）", "金额(元)", "发放金额", "发放金额(元)"]
        {
            assert_eq!(field_of(header), Some(Field::Amount), "{header}");
        }
        for header in ["身份证号", "身份证号码", "公民身份号码"] {
            assert_eq!(field_of(header), Some(Field::IdNumber), "{header}");
        }
    }

    #[test]
    fn each_missing_required_column_is_a_problem_on_the_header_line() {
        let text = "姓名,身份证号,村代码,金额\n张三,11010519491231002X,450923100201,170\n";
        assert_eq!(
            problems(read_roll(
                "roll.csv",
                text.as_bytes(),
                &ImportLimits::default()
            )),
            [
                (1, "项目代码".to_owned(), "缺少列「项目代码」".to_owned()),
                (1, "发放期间".to_owned(), "缺少列「发放期间」".to_owned()),
            ]
        );
    }

    #[test]
    fn a_field_named_by_two_columns_is_refused() {
        let text = format!("{HEADER},发放金额\n{ROW},170\n");
        assert_eq!(
            problems(read_roll(
                "roll.csv",
                text.as_bytes(),
                &ImportLimits::default()
            )),
            [(
                1,
                "金额".to_owned(),
                "有多列都对应「金额」，请只保留一列".to_owned()
            )]
        );
    }

    #[test]
    fn blank_rows_are_skipped_and_lines_stay_spreadsheet_rows() {
        let text = format!("\n{HEADER}\n{ROW}\n,,,,,,,\n\n  ,, ,,,,,\n{ROW}\n");
        let rows = read_roll("roll.csv", text.as_bytes(), &ImportLimits::default()).unwrap();
        let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 7]);
    }

    #[test]
    fn short_rows_leave_missing_cells_empty() {
        let text = format!("{HEADER}\n张三,11010519491231002X\n");
        let rows = read_roll("roll.csv", text.as_bytes(), &ImportLimits::default()).unwrap();
        assert_eq!(rows[0].name, "张三");
        assert_eq!(rows[0].amount, "");
    }

    #[test]
    fn a_file_without_data_rows_is_a_problem() {
        let text = format!("{HEADER}\n");
        assert_eq!(
            problems(read_roll(
                "roll.csv",
                text.as_bytes(),
                &ImportLimits::default()
            )),
            [(0, "文件".to_owned(), "文件中没有数据行".to_owned())]
        );
        assert_eq!(
            problems(read_roll("roll.csv", b"", &ImportLimits::default())),
            [(0, "文件".to_owned(), "文件是空的，没有表头".to_owned())]
        );
    }

    #[test]
    fn old_excel_files_are_refused() {
        let bytes = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest of an OLE file";
        let expected = [(
            0,
            "文件".to_owned(),
            "不支持 .xls，请另存为 .xlsx 或 CSV".to_owned(),
        )];
        assert_eq!(
            problems(read_roll("roll.xls", bytes, &ImportLimits::default())),
            expected
        );
        assert_eq!(
            problems(read_roll("roll.bin", bytes, &ImportLimits::default())),
            expected
        );
        assert_eq!(
            problems(read_roll(
                "ROLL.XLS",
                b"<html><table></table></html>",
                &ImportLimits::default()
            )),
            expected
        );
    }

    #[test]
    fn a_broken_xlsx_is_a_problem_not_a_panic() {
        let zip_but_not_xlsx = b"PK\x03\x04not really a zip archive";
        assert_eq!(
            problems(read_roll(
                "roll.xlsx",
                zip_but_not_xlsx,
                &ImportLimits::default()
            ))[0]
                .0,
            0
        );
        assert_eq!(
            problems(read_roll(
                "roll.xlsx",
                HEADER.as_bytes(),
                &ImportLimits::default()
            ))[0]
                .1,
            "文件"
        );
    }

    mod xlsx {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

        use super::*;

        /// A roll as a department builds it in Excel, starting at `first_row` (0-based).
        fn workbook(
            first_row: u32,
            fill: impl Fn(&mut rust_xlsxwriter::Worksheet, u32),
        ) -> Vec<u8> {
            let mut workbook = Workbook::new();
            let sheet = workbook.add_worksheet();
            for (col, header) in HEADER.split(',').enumerate() {
                sheet
                    .write_string(first_row, u16::try_from(col).unwrap(), header)
                    .unwrap();
            }
            fill(sheet, first_row + 1);
            workbook.save_to_buffer().unwrap()
        }

        fn text_row(sheet: &mut rust_xlsxwriter::Worksheet, row: u32) {
            for (col, cell) in ROW.split(',').enumerate() {
                sheet
                    .write_string(row, u16::try_from(col).unwrap(), cell)
                    .unwrap();
            }
        }

        #[test]
        fn text_cells_read_as_written() {
            let bytes = workbook(0, text_row);
            let rows = read_roll("roll.xlsx", &bytes, &ImportLimits::default()).unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].line, 2);
            assert_eq!(rows[0].id_number, "11010519491231002X");
            assert_eq!(rows[0].amount, "170.50");
        }

        #[test]
        fn numbers_and_dates_become_the_text_a_department_meant() {
            let bytes = workbook(2, |sheet, row| {
                text_row(sheet, row);
                sheet.write_number(row, 2, 450_923_100_201.0).unwrap();
                sheet.write_number(row, 5, 170.5).unwrap();
                let month = Format::new().set_num_format("yyyy-mm");
                let date = ExcelDateTime::from_ymd(2026, 7, 1).unwrap();
                sheet
                    .write_datetime_with_format(row, 4, &date, &month)
                    .unwrap();
                text_row(sheet, row + 2);
                sheet.write_number(row + 2, 5, 170.0).unwrap();
                sheet.write_number(row + 2, 4, 202_607.0).unwrap();
                sheet.write_number(row + 2, 6, 622_848_001_234.0).unwrap();
            });
            let rows = read_roll("roll.xlsx", &bytes, &ImportLimits::default()).unwrap();
            // Header on spreadsheet row 3; the blank row 5 is skipped.
            let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [4, 6]);
            assert_eq!(rows[0].village_code, "450923100201");
            assert_eq!(rows[0].amount, "170.50");
            assert_eq!(rows[0].period, "2026-07");
            assert_eq!(rows[1].amount, "170.00");
            assert_eq!(rows[1].period, "202607");
            assert_eq!(rows[1].bank_account, "622848001234");
        }

        #[test]
        fn an_id_number_stored_as_a_number_is_a_problem_at_its_cell() {
            let bytes = workbook(0, |sheet, row| {
                text_row(sheet, row);
                text_row(sheet, row + 1);
                sheet
                    .write_number(row + 1, 1, 110_105_194_912_310_020.0)
                    .unwrap();
                sheet
                    .write_number(row + 1, 6, 6_228_480_012_345_678.0)
                    .unwrap();
            });
            assert_eq!(
                problems(read_roll("roll.xlsx", &bytes, &ImportLimits::default())),
                [
                    (
                        3,
                        "身份证号".to_owned(),
                        "身份证号请以文本格式保存（数字格式会丢失末位）".to_owned()
                    ),
                    (
                        3,
                        "银行账号".to_owned(),
                        "银行账号请以文本格式保存（数字格式会丢失末位）".to_owned()
                    ),
                ]
            );
        }

        #[test]
        fn missing_columns_are_reported_for_xlsx_too() {
            let mut workbook = Workbook::new();
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 0, "姓名").unwrap();
            sheet.write_string(1, 0, "张三").unwrap();
            let bytes = workbook.save_to_buffer().unwrap();
            let found = problems(read_roll("roll.xlsx", &bytes, &ImportLimits::default()));
            assert_eq!(found.len(), 5);
            assert!(found.iter().all(|(line, ..)| *line == 1));
        }

        #[test]
        fn iso_dates_in_the_period_column_become_a_month() {
            assert_eq!(iso_month("2026-07-01T00:00:00"), "2026-07");
            assert_eq!(iso_month("2026-07-01"), "2026-07");
            assert_eq!(iso_month("2026-07"), "2026-07");
            assert_eq!(iso_month("10:00:00"), "10:00:00");
        }
    }
}
