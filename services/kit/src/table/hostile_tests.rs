//! Files built to exhaust a reader: each is refused as a problem naming the limit,
//! before anything of the size it claims is allocated.

use std::io::{Cursor, Read, Write};

use rust_xlsxwriter::Workbook;

use super::*;

fn refused(bytes: &[u8], file_name: &str, limits: &ImportLimits) -> String {
    match read_table(file_name, bytes, limits) {
        Ok(table) => panic!("read {} rows", table.rows.len()),
        Err(problems) => {
            assert_eq!(problems.listed().len(), 1, "{problems:?}");
            assert_eq!(
                (
                    problems.listed()[0].line,
                    problems.listed()[0].column.as_str()
                ),
                (0, FILE)
            );
            problems.listed()[0].message.clone()
        }
    }
}

fn workbook(fill: impl Fn(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
    let mut workbook = Workbook::new();
    fill(workbook.add_worksheet());
    workbook.save_to_buffer().expect("an xlsx")
}

/// The archive with the part `name` rewritten by `edit` (added when missing).
fn tamper(xlsx: &[u8], name: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    tamper_adding(xlsx, name, edit, 0)
}

/// As [`tamper`], adding `extra` empty parts.
fn tamper_adding(
    xlsx: &[u8],
    name: &str,
    edit: impl Fn(String) -> String,
    extra: usize,
) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(xlsx)).expect("a zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut found = false;
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).expect("a part");
        let part_name = part.name().expect("a name").into_owned();
        let mut content = Vec::new();
        part.read_to_end(&mut content).expect("unpacks");
        if part_name == name {
            found = true;
            content = edit(String::from_utf8(content).expect("xml")).into_bytes();
        }
        out.start_file(part_name, options).expect("a part");
        out.write_all(&content).expect("written");
    }
    if !found {
        out.start_file(name, options).expect("a part");
        out.write_all(edit(String::new()).as_bytes())
            .expect("written");
    }
    for part in 0..extra {
        out.start_file(format!("xl/media/{part}.bin"), options)
            .expect("a part");
    }
    out.finish().expect("a zip").into_inner()
}

#[test]
fn cells_at_a1_and_xfd1048576_are_refused_by_the_row_limit() {
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
        sheet
            .write_string(1_048_575, 16_383, "x")
            .expect("XFD1048576");
    });
    assert!(bytes.len() < 8 * 1024, "{} bytes", bytes.len());
    let limits = ImportLimits::default();
    assert_eq!(
        refused(&bytes, "roll.xlsx", &limits),
        "文件超过行数上限 1000000 行，请分批导入"
    );
    // With rows allowed, the width is refused instead.
    let wide = ImportLimits {
        max_rows: 2_000_000,
        ..limits
    };
    assert_eq!(
        refused(&bytes, "roll.xlsx", &wide),
        "文件超过列数上限 64 列"
    );
}

#[test]
fn a_sheet_that_declares_less_than_it_holds_is_still_refused() {
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
        sheet.write_string(0, 200, "x").expect("GS1");
    });
    let bytes = tamper(&bytes, "xl/worksheets/sheet1.xml", |xml| {
        xml.replace(r#"<dimension ref="A1:GS1"/>"#, r#"<dimension ref="A1"/>"#)
    });
    assert_eq!(
        refused(&bytes, "roll.xlsx", &ImportLimits::default()),
        "文件超过列数上限 64 列"
    );
}

#[test]
fn a_declared_four_billion_shared_strings_are_refused_before_calamine_reserves_them() {
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
    });
    let bytes = tamper(&bytes, "xl/sharedStrings.xml", |xml| {
        let at = xml.find("uniqueCount=\"").expect("a count") + "uniqueCount=\"".len();
        let end = at + xml[at..].find('"').expect("closed");
        format!("{}4000000000{}", &xml[..at], &xml[end..])
    });
    assert!(refused(&bytes, "roll.xlsx", &ImportLimits::default()).contains("16 倍"));
}

#[test]
fn a_part_that_unpacks_far_beyond_the_file_is_refused() {
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
    });
    // 48 MB of spaces inside the sheet's XML deflate to ~50 KB.
    let bytes = tamper(&bytes, "xl/worksheets/sheet1.xml", |xml| {
        xml.replace(
            "<sheetData>",
            &format!("<sheetData>{}", " ".repeat(48 << 20)),
        )
    });
    assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
    let message = refused(&bytes, "roll.xlsx", &ImportLimits::default());
    assert!(message.starts_with("XLSX 文件解压后超过上限 "), "{message}");
}

#[test]
fn an_archive_of_thousands_of_parts_is_refused() {
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
    });
    let bytes = tamper_adding(&bytes, "xl/workbook.xml", |xml| xml, 1_000);
    assert_eq!(
        refused(&bytes, "roll.xlsx", &ImportLimits::default()),
        "XLSX 文件包含的部件超过上限 1000 个"
    );
}

#[test]
fn csv_rows_and_columns_beyond_the_limits_are_refused() {
    let limits = ImportLimits {
        max_rows: 10,
        max_columns: 3,
        ..ImportLimits::default()
    };
    let rows = "a,b\n".repeat(11);
    assert_eq!(
        refused(rows.as_bytes(), "t.csv", &limits),
        "文件超过行数上限 10 行，请分批导入"
    );
    assert_eq!(
        refused(b"a,b,c,d\n", "t.csv", &limits),
        "文件超过列数上限 3 列"
    );
    // Rows split by bare CRs, which spreadsheets show on one line, count as rows.
    let rows = "a,b\r".repeat(11);
    assert_eq!(
        refused(rows.as_bytes(), "t.csv", &limits),
        "文件超过行数上限 10 行，请分批导入"
    );
    // Trailing empty cells are not columns.
    let table = read_table("t.csv", b"a,b,c,,,,,,\n1,,,,,,,,\n", &limits).expect("fits");
    assert_eq!(table.rows[0].cells.len(), 1);
}

#[test]
fn csv_of_near_empty_rows_is_refused_once_its_cells_pass_the_budget() {
    let limits = ImportLimits {
        max_rows: usize::MAX,
        ..ImportLimits::default()
    };
    // ~100 bytes of cells for every 2 bytes of file: past 16× the file and the floor.
    let bytes = "1\n".repeat(700_000);
    assert_eq!(
        refused(bytes.as_bytes(), "t.csv", &limits),
        "文件内容展开后超过上限（文件大小的 16 倍），请删除多余的空行、空列，或分批导入"
    );
}

#[test]
fn a_dimension_ending_before_it_starts_is_unreadable_not_a_panic() {
    // Found by fuzz_files_table_reader: calamine subtracts the corners unchecked.
    let bytes = workbook(|sheet| {
        sheet.write_string(0, 0, "姓名").expect("A1");
    });
    let bytes = tamper(&bytes, "xl/worksheets/sheet1.xml", |xml| {
        xml.replace(r#"<dimension ref="A1"/>"#, r#"<dimension ref="B2:A1"/>"#)
    });
    assert_eq!(
        refused(&bytes, "roll.xlsx", &ImportLimits::default()),
        "无法读取该 XLSX 文件，请确认文件完好，或另存为 CSV"
    );
}
