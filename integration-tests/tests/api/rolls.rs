//! Fixtures for ledger tests: a registered population and payment rolls.

use huimin_kit::{auth::Role, pii::IdNumber};
use huimin_proto::ledger::v1::{ImportRollChunk, ImportRollResponse, RollKind};

use crate::helpers::{Resident, TestApp, authed};

/// One row of a roll, as a department writes it.
#[derive(Clone, Debug)]
pub struct RollRow {
    pub name: String,
    pub id_number: String,
    pub village: String,
    pub program: String,
    pub period: String,
    pub amount: String,
    pub bank: String,
    pub kind: String,
}

impl RollRow {
    pub fn pay(person: &Resident, program: &str, period: &str, amount: &str) -> Self {
        Self {
            name: person.name.clone(),
            id_number: person.id_number.expose().to_owned(),
            village: person.village.clone(),
            program: program.to_owned(),
            period: period.to_owned(),
            amount: amount.to_owned(),
            bank: "6228480012345678".to_owned(),
            kind: "发放".to_owned(),
        }
    }

    pub fn reverse(person: &Resident, program: &str, period: &str, amount: &str) -> Self {
        Self {
            kind: "冲正".to_owned(),
            ..Self::pay(person, program, period, amount)
        }
    }
}

pub const HEADER: [&str; 8] = [
    "姓名",
    "身份证号",
    "村代码",
    "项目代码",
    "发放期间",
    "金额（元）",
    "银行账号",
    "类型",
];

pub fn roll_csv(rows: &[RollRow]) -> String {
    let mut text = HEADER.join(",");
    text.push('\n');
    for r in rows {
        text.push_str(
            &[
                &r.name,
                &r.id_number,
                &r.village,
                &r.program,
                &r.period,
                &r.amount,
                &r.bank,
                &r.kind,
            ]
            .map(|s| s.as_str())
            .join(","),
        );
        text.push('\n');
    }
    text
}

/// `n` more residents of one village, in households of four.
pub fn villagers(n: u16, village: &str) -> Vec<Resident> {
    let born = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("valid date");
    (0..n)
        .map(|i| Resident {
            household: format!("V-{}", i / 4),
            name: format!("村民{}", chinese_number(i)),
            id_number: IdNumber::from_parts(
                "450923",
                born + chrono::Days::new(u64::from(i / 400)),
                i % 400 + 100,
            ),
            relation: if i % 4 == 0 { "户主" } else { "子" }.to_owned(),
            village: village.to_owned(),
        })
        .collect()
}

/// Names may not contain digits: spell the index in Chinese numerals.
fn chinese_number(mut n: u16) -> String {
    const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::from(n % 10)]);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}

pub async fn import_roll(
    app: &TestApp,
    file_name: &str,
    bytes: &[u8],
    role: Role,
    scope: Option<&str>,
) -> Result<ImportRollResponse, tonic::Status> {
    import_roll_as(app, file_name, bytes, role, scope, RollKind::PreCheck).await
}

/// Imports a roll file of `kind` (the first chunk says which).
pub async fn import_roll_as(
    app: &TestApp,
    file_name: &str,
    bytes: &[u8],
    role: Role,
    scope: Option<&str>,
    kind: RollKind,
) -> Result<ImportRollResponse, tonic::Status> {
    let chunks: Vec<ImportRollChunk> = bytes
        .chunks(64 * 1024)
        .enumerate()
        .map(|(i, data)| ImportRollChunk {
            file_name: if i == 0 {
                file_name.to_owned()
            } else {
                String::new()
            },
            data: data.to_vec(),
            kind: if i == 0 { kind as i32 } else { 0 },
        })
        .collect();
    let request = authed(tokio_stream::iter(chunks), &app.token(role, scope));
    app.ledger()
        .import_roll(request)
        .await
        .map(tonic::Response::into_inner)
}

pub async fn import_csv(
    app: &TestApp,
    rows: &[RollRow],
) -> Result<ImportRollResponse, tonic::Status> {
    import_roll(
        app,
        "roll.csv",
        roll_csv(rows).as_bytes(),
        Role::Admin,
        None,
    )
    .await
}

pub async fn count(app: &TestApp, table: &str) -> i64 {
    let mut db = app.db_schema("ledger").await;
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut db)
        .await
        .expect("count")
}
