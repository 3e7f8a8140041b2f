//! Bounded fuzzing of the parsers that take staff's files: the table reader (CSV and
//! XLSX), the roll reader and the persons reader. Any input must end in rows or
//! problems, never a panic, an abort or unbounded memory.
//!
//! scripts/test runs proptest's default 256 cases of each; a long run is
//! `PROPTEST_CASES=1000000 cargo test -p integration-tests --test api fuzz_files`
//! (docs/security.md, Fuzzing).

use std::{
    collections::HashSet,
    io::{Cursor, Read, Write},
    sync::OnceLock,
};

use huimin_kit::table::{ImportLimits, read_table};
use proptest::prelude::*;

const ROLL_HEADER: &str = "姓名,身份证号,村代码,项目代码,发放期间,金额,银行账号,类型";
const PERSONS_HEADER: &str = "姓名,身份证号,村代码,户号,与户主关系";

/// Tokens that steer a mutation toward the checks: far cells, huge counts, odd types.
const TOKENS: &[&str] = &[
    r#"<c r="XFD1048576"><v>1</v></c>"#,
    r#"<c r="A1048577" t="s"><v>0</v></c>"#,
    r#"<c t="s"><v>4294967295</v></c>"#,
    r#"<c t="inlineStr"><is><t>x</t></is></c>"#,
    r#"uniqueCount="4000000000""#,
    r#"<dimension ref="A1:XFD1048576"/>"#,
    "<row>",
    "</row>",
    "<si><t>张三</t></si>",
    "<v>1e308</v>",
    "\u{0}",
];

/// Small limits, so that the checks are reached in a few bytes.
fn limits() -> ImportLimits {
    ImportLimits {
        max_rows: 50,
        max_columns: 10,
        ..ImportLimits::default()
    }
}

/// The parts of a small valid roll as Excel would save it, unpacked.
fn roll_parts() -> &'static [(String, Vec<u8>)] {
    static PARTS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    PARTS.get_or_init(|| {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (col, header) in (0u16..).zip(ROLL_HEADER.split(',')) {
            sheet.write_string(0, col, header).unwrap();
        }
        sheet.write_string(1, 0, "张三").unwrap();
        sheet.write_string(1, 1, "11010519491231002X").unwrap();
        sheet.write_number(1, 5, 170.5).unwrap();
        sheet.write_number(2, 2, 450_923_100_201.0).unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..archive.len())
            .map(|index| {
                let mut part = archive.by_index(index).unwrap();
                let name = part.name().unwrap().into_owned();
                let mut content = Vec::new();
                part.read_to_end(&mut content).unwrap();
                (name, content)
            })
            .collect()
    })
}

/// An edit of one part's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Token(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Token(at, t)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(content: &mut Vec<u8>, edit: &Edit) {
    let at = |n: usize, len: usize| if len == 0 { 0 } else { n % (len + 1) };
    match *edit {
        Edit::Replace(n, b) if !content.is_empty() => {
            let i = n % content.len();
            content[i] = b;
        }
        Edit::Insert(n, b) => content.insert(at(n, content.len()), b),
        Edit::Delete(n) if !content.is_empty() => {
            content.remove(n % content.len());
        }
        Edit::Token(n, t) => {
            let i = at(n, content.len());
            content.splice(i..i, TOKENS[t].bytes());
        }
        Edit::Truncate(n) => content.truncate(at(n, content.len())),
        _ => {}
    }
}

/// A roll XLSX with one part edited, repacked (stored, so its checksums are right and
/// the edit reaches the XML parser).
fn mutated_xlsx() -> impl Strategy<Value = Vec<u8>> {
    (
        0..roll_parts().len(),
        proptest::collection::vec(edit(), 1..12),
    )
        .prop_map(|(part, edits)| {
            let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for (index, (name, content)) in roll_parts().iter().enumerate() {
                let mut content = content.clone();
                if index == part {
                    for edit in &edits {
                        apply(&mut content, edit);
                    }
                }
                out.start_file(name.as_str(), options).unwrap();
                out.write_all(&content).unwrap();
            }
            out.finish().unwrap().into_inner()
        })
}

/// Comma-separated text under `header`: the characters CSV and the readers care about.
fn csv_text(header: &'static str) -> impl Strategy<Value = Vec<u8>> {
    "[,\n\r\" 0-9a-zX.\\-/张三李四（元）*]{0,400}"
        .prop_map(move |body| format!("{header}\n{body}").into_bytes())
}

/// Anything: raw bytes, CSV-like text, or an edited XLSX.
fn any_file(header: &'static str) -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(|b| ("f.csv".to_owned(), b)),
        csv_text(header).prop_map(|b| ("f.csv".to_owned(), b)),
        mutated_xlsx().prop_map(|b| ("f.xlsx".to_owned(), b)),
    ]
}

proptest! {
    #[test]
    fn fuzz_files_table_reader((name, bytes) in any_file(ROLL_HEADER)) {
        if let Ok(table) = read_table(&name, &bytes, &limits()) {
            prop_assert!(table.rows.len() < limits().max_rows);
            prop_assert!(table.rows.iter().all(|r| r.cells.len() <= limits().max_columns));
        }
    }

    #[test]
    fn fuzz_files_roll_reader((name, bytes) in any_file(ROLL_HEADER)) {
        let _ = huimin_ledger::rollfile::read_roll(&name, &bytes, &limits());
    }

    #[test]
    fn fuzz_files_persons_reader((name, bytes) in any_file(PERSONS_HEADER)) {
        let villages: HashSet<String> = ["450923100201".to_owned()].into();
        let _ = huimin_identity::import::parse_persons(&name, &bytes, &villages, &limits());
    }
}
