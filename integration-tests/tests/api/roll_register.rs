//! A roll import is no way to look persons up: staff without person-lookup
//! rights get one reason for every row the register does not confirm, and
//! such rows are limited per caller and recorded.

use huimin_kit::{auth::Role, pii::IdNumber};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{Options, Resident, TestApp, import_persons, persons_csv, residents},
    rolls::{RollRow, import_roll, roll_csv},
};

const DEPARTMENT: &str = "博白县民政局";

/// A roll of 民政局's with a wrong name, an unregistered ID number and a
/// wrong village, in that order (lines 2 to 4).
fn probing_roll(people: &[Resident]) -> String {
    let pay = |person: &Resident| RollRow::pay(person, "DIBAO_RURAL", "2026-07", "350");
    let stranger = Resident {
        name: "李四".to_owned(),
        id_number: IdNumber::from_parts(
            "450923",
            chrono::NaiveDate::from_ymd_opt(1990, 2, 2).unwrap(),
            999,
        ),
        ..people[0].clone()
    };
    roll_csv(&[
        RollRow {
            name: "王五".to_owned(),
            ..pay(&people[0])
        },
        pay(&stranger),
        RollRow {
            village: "450923100201".to_owned(),
            ..pay(&people[1])
        },
    ])
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

async fn app_with(options: Options) -> (TestApp, Vec<Resident>) {
    let app = TestApp::spawn_with(options).await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .expect("residents import");
    (app, people)
}

#[tokio::test]
async fn a_department_officer_gets_one_reason_for_every_row_the_register_refuses() {
    let (app, people) = app_with(Options::default()).await;
    let roll = probing_roll(&people);

    let officer = import_roll(
        &app,
        "r.csv",
        roll.as_bytes(),
        Role::Department,
        Some(DEPARTMENT),
    )
    .await
    .unwrap_err();
    let admin = import_roll(&app, "r.csv", roll.as_bytes(), Role::Admin, None)
        .await
        .unwrap_err();

    let reason = |line: usize| (format!("第{line}行/户籍核验"), "与户籍登记不符".to_owned());
    assert_eq!(violations(&officer), vec![reason(2), reason(3), reason(4)]);
    let admin_fields: Vec<String> = violations(&admin).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        admin_fields,
        ["第2行/姓名", "第3行/身份证号", "第4行/村代码"],
        "staff who may look persons up still learn which part is wrong"
    );
}

#[tokio::test]
async fn failed_register_checks_are_limited_per_caller_and_recorded() {
    let (app, people) = app_with(Options {
        env: vec![("HUIMIN_REGISTER_FAILURES_PER_DAY", "3".to_owned())],
        ..Options::default()
    })
    .await;
    let good = roll_csv(&[RollRow::pay(&people[2], "DIBAO_RURAL", "2026-07", "350")]);

    let probe = import_roll(
        &app,
        "r.csv",
        probing_roll(&people).as_bytes(),
        Role::Department,
        Some(DEPARTMENT),
    )
    .await
    .unwrap_err();
    let next = import_roll(
        &app,
        "g.csv",
        good.as_bytes(),
        Role::Department,
        Some(DEPARTMENT),
    )
    .await
    .unwrap_err();
    let admin = import_roll(&app, "g.csv", good.as_bytes(), Role::Admin, None).await;
    let mut db = app.db_schema("ledger").await;
    let recorded: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT staff, role, failures FROM register_check_failures ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();

    assert_eq!(probe.code(), Code::InvalidArgument);
    assert_eq!(next.code(), Code::ResourceExhausted, "{next:?}");
    assert!(admin.is_ok(), "other callers are not limited: {admin:?}");
    assert_eq!(
        recorded,
        [("test-department".to_owned(), "department".to_owned(), 3)]
    );
}
