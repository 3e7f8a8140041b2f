//! Hostile upload files through all three importers (roll, persons, projects): each is
//! refused with INVALID_ARGUMENT naming the limit, and the service goes on serving.

use huimin_kit::auth::Role;
use rust_xlsxwriter::Workbook;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::{
    helpers::{TestApp, app_with_residents, import_persons, import_persons_named, persons_csv},
    registry::{VILLAGE, admin},
    registry_public::{file, import, row},
    rolls::{RollRow, import_csv, import_roll},
};

/// 2 KB that once made calamine allocate ~550 GB: one cell at A1, one at XFD1048576.
fn corner_to_corner() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "姓名").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// The status's message and every violation it carries, as one text.
fn said(status: &Status) -> String {
    let mut text = status.message().to_owned();
    if let Some(bad) = status.get_details_bad_request() {
        for violation in bad.field_violations {
            text.push('\n');
            text.push_str(&violation.description);
        }
    }
    text
}

fn assert_refused_for_rows(status: &Status, limit: usize) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let text = said(status);
    assert!(
        text.contains(&format!("文件超过行数上限 {limit} 行")),
        "{text}"
    );
}

#[tokio::test]
async fn a_corner_to_corner_roll_is_refused_and_ledger_goes_on() {
    let (app, people) = app_with_residents().await;
    let bytes = corner_to_corner();
    let status = import_roll(&app, "花名册.xlsx", &bytes, Role::Admin, None)
        .await
        .unwrap_err();
    assert_refused_for_rows(&status, 1_000_000);
    let good = import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    assert_eq!(good.payments, 1);
}

#[tokio::test]
async fn a_corner_to_corner_persons_file_is_refused_and_identity_goes_on() {
    let (app, people) = app_with_residents().await;
    let chunks = corner_to_corner();
    let status = import_persons_named(&app, "户籍.xlsx", &chunks)
        .await
        .unwrap_err();
    assert_refused_for_rows(&status, 1_000_000);
    let again = import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    assert_eq!(again.persons, people.len() as u64);
}

#[tokio::test]
async fn a_corner_to_corner_project_file_is_refused_and_registry_goes_on() {
    let app = TestApp::spawn().await;
    let status = import(&app, "项目表.xlsx", &corner_to_corner(), &admin(&app))
        .await
        .unwrap_err();
    assert_refused_for_rows(&status, 1_000_000);
    let good = import(
        &app,
        "项目表.csv",
        file(&[row("HOSTILE-1", VILLAGE)]).as_bytes(),
        &admin(&app),
    )
    .await
    .unwrap();
    assert_eq!(good.created, 1);
}

#[tokio::test]
async fn import_limits_are_read_from_the_environment() {
    let app = TestApp::spawn_with(crate::helpers::Options {
        env: vec![("HUIMIN_IMPORT_MAX_ROWS", "3".to_owned())],
        ..Default::default()
    })
    .await;
    let rows: Vec<String> = (1..=3)
        .map(|n| row(&format!("LIMIT-{n}"), VILLAGE))
        .collect();
    // The header and three rows end on line 4.
    let status = import(&app, "项目表.csv", file(&rows).as_bytes(), &admin(&app))
        .await
        .unwrap_err();
    assert_refused_for_rows(&status, 3);
    let good = import(
        &app,
        "项目表.csv",
        file(&rows[..2]).as_bytes(),
        &admin(&app),
    )
    .await
    .unwrap();
    assert_eq!(good.created, 2);
}
