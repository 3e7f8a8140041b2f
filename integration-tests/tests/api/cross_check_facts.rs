//! The cross-check rules that join payments with identity's reference datasets: each found
//! through the real path (a dataset imported into identity, followed by ledger, the rules
//! run), each beside a near miss that must not be found.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use huimin_kit::{auth::Role, pii::IdNumber};
use huimin_proto::{
    identity::v1::{ImportFactsChunk, ImportFactsResponse},
    ledger::v1::{Finding, RollKind},
};

use crate::{
    cross_checks::{account_of, findings, import, run_full, settled},
    helpers::{Resident, TestApp, app_with, authed},
    rolls::RollRow,
};

const VILLAGE: &str = "450923106201";

fn person(
    household: &str,
    name: &str,
    born: (i32, u32, u32),
    serial: u16,
    relation: &str,
) -> Resident {
    Resident {
        household: household.to_owned(),
        name: name.to_owned(),
        id_number: IdNumber::from_parts(
            "450923",
            NaiveDate::from_ymd_opt(born.0, born.1, born.2).expect("a date"),
            serial,
        ),
        relation: relation.to_owned(),
        village: VILLAGE.to_owned(),
    }
}

/// A dataset file of `kind` from a department, as an admin imports it.
async fn facts(app: &TestApp, kind: &str, csv: &str) -> ImportFactsResponse {
    let chunks = vec![ImportFactsChunk {
        file_name: format!("{kind}.csv"),
        kind: kind.to_owned(),
        source_department: "博白县比对数据来源单位".to_owned(),
        data: csv.as_bytes().to_vec(),
    }];
    app.identity()
        .import_facts(authed(
            tokio_stream::iter(chunks),
            &app.token(Role::Admin, None),
        ))
        .await
        .expect("facts import")
        .into_inner()
}

fn id(r: &Resident) -> &str {
    r.id_number.expose()
}

/// A payment into the household's own account.
fn pay(r: &Resident, program: &str, period: &str, amount: &str) -> RollRow {
    RollRow {
        bank: account_of(&r.household),
        ..RollRow::pay(r, program, period, amount)
    }
}

async fn record(app: &TestApp, name: &str, rows: &[RollRow]) {
    import(app, name, rows, RollKind::Record)
        .await
        .expect("record imported");
    settled(app).await;
}

/// Waits until the findings satisfy `done` (the background follower runs every second).
async fn until(app: &TestApp, what: &str, done: impl Fn(&[Finding]) -> bool) -> Vec<Finding> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = findings(app).await;
        if done(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "{what}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn names<'a>(all: &'a [Finding], rule: &str) -> Vec<(&'a str, &'a str)> {
    let mut found: Vec<(&str, &str)> = all
        .iter()
        .filter(|f| f.rule_id == rule && f.state == "open")
        .map(|f| (f.name_masked.as_str(), f.period.as_str()))
        .collect();
    found.sort_unstable();
    found
}

/// Dates every household membership from 2000, as a register with its history would.
async fn backdate_households(app: &TestApp) {
    let mut identity = app.db_schema("identity").await;
    sqlx::query(
        "UPDATE person_facts SET since = DATE '2000-01-01' WHERE kind = 'household_member'",
    )
    .execute(&mut identity)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_death_import_finds_payments_after_the_month_of_death_and_a_corrected_date_closes_it() {
    let dead = person("D-1", "甘玉兰", (1940, 2, 3), 21, "户主");
    let near = person("D-2", "韦秀珍", (1941, 5, 6), 22, "户主");
    let (app, _) = app_with(vec![dead.clone(), near.clone()]).await;
    record(
        &app,
        "dibao.csv",
        &[
            pay(&dead, "DIBAO_RURAL", "2026-06", "300"),
            pay(&dead, "DIBAO_RURAL", "2026-07", "300"),
            // Paid in the month of death: a near miss.
            pay(&near, "DIBAO_RURAL", "2026-06", "300"),
        ],
    )
    .await;
    assert_eq!(findings(&app).await, Vec::<Finding>::new(), "no facts yet");

    facts(
        &app,
        "deceased",
        &format!(
            "姓名,身份证号,死亡日期,信息来源\n{},{},2026-06-15,县民政局殡葬信息\n{},{},2026-06-20,公安户籍注销\n",
            dead.name,
            id(&dead),
            near.name,
            id(&near)
        ),
    )
    .await;
    // The facts import alone brings it: ledger follows identity and checks the persons.
    let found = until(&app, "the death import's finding", |all| {
        !names(all, "paid_after_death").is_empty()
    })
    .await;
    assert_eq!(names(&found, "paid_after_death"), [("甘*兰", "2026-07")]);
    assert_eq!(found.len(), 1, "{found:#?}");

    // The register corrects the date to August: nothing was paid after it.
    facts(
        &app,
        "deceased",
        &format!(
            "姓名,身份证号,死亡日期,信息来源\n{},{},2026-08-01,县民政局更正\n",
            dead.name,
            id(&dead)
        ),
    )
    .await;
    let after = until(&app, "the corrected date closes it", |all| {
        all.iter().all(|f| f.state == "closed")
    })
    .await;
    assert_eq!(after.len(), 1);
}

#[tokio::test]
async fn registers_of_jobs_cadres_vehicles_companies_property_and_moves_each_find_their_own() {
    let clerk = person("P-1", "黄伟", (1980, 1, 2), 31, "户主");
    let clerks_mother = person("P-1", "黄桂芳", (1955, 3, 4), 32, "母亲");
    let former_clerk = person("P-2", "梁军", (1979, 1, 2), 33, "户主");
    let former_clerks_wife = person("P-2", "李梅", (1981, 3, 4), 34, "配偶");
    let cadre = person("C-1", "庞国强", (1970, 1, 1), 41, "户主");
    let cadres_brother = person("C-2", "庞国华", (1972, 1, 1), 43, "户主");
    let car = person("V-1", "陈建", (1975, 5, 5), 51, "户主");
    let motorbike = person("V-2", "陈康", (1976, 6, 6), 53, "户主");
    let boss = person("B-1", "刘洋", (1977, 7, 7), 61, "户主");
    let supervisor = person("B-2", "刘海", (1978, 8, 8), 63, "户主");
    let villa = person("H-1", "周大", (1960, 1, 9), 71, "户主");
    let flat = person("H-2", "周二", (1962, 1, 9), 73, "户主");
    let gone = person("M-1", "吴迁", (1985, 2, 2), 81, "户主");
    let people = vec![
        clerk.clone(),
        clerks_mother.clone(),
        former_clerk.clone(),
        former_clerks_wife.clone(),
        cadre.clone(),
        cadres_brother.clone(),
        car.clone(),
        motorbike.clone(),
        boss.clone(),
        supervisor.clone(),
        villa.clone(),
        flat.clone(),
        gone.clone(),
    ];
    let (app, _) = app_with(people).await;
    // The register's households reach back before the import day.
    backdate_households(&app).await;
    let csv = |header: &str, rows: &[String]| format!("{header}\n{}\n", rows.join("\n"));
    facts(
        &app,
        "public_employee",
        &csv(
            "姓名,身份证号,工作单位,起始日期,终止日期",
            &[
                format!("{},{},博白县财政局,2015-03-01,", clerk.name, id(&clerk)),
                // Left before the household's 低保.
                format!(
                    "{},{},博白县林业局,2010-01-01,2023-12-31",
                    former_clerk.name,
                    id(&former_clerk)
                ),
            ],
        ),
    )
    .await;
    facts(
        &app,
        "village_cadre",
        &csv(
            "姓名,身份证号,村代码,职务,任职起始,任职终止",
            &[format!(
                "{},{},{VILLAGE},村委会主任,2016-01-01,2024-12-31",
                cadre.name,
                id(&cadre)
            )],
        ),
    )
    .await;
    facts(
        &app,
        "cadre_relative",
        &csv(
            "干部身份证号,亲属姓名,亲属身份证号,关系",
            &[format!(
                "{},{},{},兄弟",
                id(&cadre),
                cadres_brother.name,
                id(&cadres_brother)
            )],
        ),
    )
    .await;
    facts(
        &app,
        "vehicle_owner",
        &csv(
            "姓名,身份证号,号牌号码,车辆类型,登记日期",
            &[
                format!("{},{},桂K12345,小型普通客车,2021-04-01", car.name, id(&car)),
                format!(
                    "{},{},桂K6789A,普通二轮摩托车,2021-04-01",
                    motorbike.name,
                    id(&motorbike)
                ),
            ],
        ),
    )
    .await;
    facts(
        &app,
        "company_owner",
        &csv(
            "姓名,身份证号,企业名称,统一社会信用代码,身份,成立日期",
            &[
                format!(
                    "{},{},博白县洋洋商贸有限公司,91450923MA5K000001,法定代表人,2019-09-09",
                    boss.name,
                    id(&boss)
                ),
                format!(
                    "{},{},博白县海海商贸有限公司,91450923MA5K000002,监事,2019-09-09",
                    supervisor.name,
                    id(&supervisor)
                ),
            ],
        ),
    )
    .await;
    facts(
        &app,
        "property_owner",
        &csv(
            "姓名,身份证号,坐落,建筑面积,登记日期",
            &[
                format!(
                    "{},{},博白镇城南路8号,180.5,2018-01-01",
                    villa.name,
                    id(&villa)
                ),
                format!("{},{},博白镇城南路9号,120,2018-01-01", flat.name, id(&flat)),
            ],
        ),
    )
    .await;
    facts(
        &app,
        "moved_out",
        &csv(
            "姓名,身份证号,迁出日期,迁往地",
            &[format!(
                "{},{},2026-05-10,广东省东莞市",
                gone.name,
                id(&gone)
            )],
        ),
    )
    .await;
    record(
        &app,
        "dibao.csv",
        &[
            pay(&clerks_mother, "DIBAO_RURAL", "2026-06", "300"),
            pay(&former_clerks_wife, "DIBAO_RURAL", "2026-06", "300"),
            pay(&cadres_brother, "DIBAO_RURAL", "2024-06", "300"),
            // After the cadre left office: a near miss.
            pay(&cadres_brother, "DIBAO_RURAL", "2025-03", "300"),
            pay(&car, "DIBAO_RURAL", "2026-06", "300"),
            pay(&motorbike, "DIBAO_RURAL", "2026-06", "300"),
            pay(&boss, "DIBAO_RURAL", "2026-06", "300"),
            pay(&supervisor, "DIBAO_RURAL", "2026-06", "300"),
            pay(&villa, "DIBAO_RURAL", "2026-06", "300"),
            pay(&flat, "DIBAO_RURAL", "2026-06", "300"),
            pay(&gone, "DIBAO_RURAL", "2026-05", "300"),
            pay(&gone, "DIBAO_RURAL", "2026-06", "300"),
        ],
    )
    .await;
    run_full(&app).await;
    let all = findings(&app).await;

    assert_eq!(names(&all, "public_employee"), [("黄*芳", "2026-06")]);
    assert_eq!(names(&all, "cadre_favoritism"), [("庞*华", "2024-06")]);
    let favour = all
        .iter()
        .find(|f| f.rule_id == "cadre_favoritism")
        .unwrap();
    assert_eq!(favour.severity, "low");
    let evidence: serde_json::Value = serde_json::from_str(&favour.evidence_json).unwrap();
    assert_eq!(evidence["periods"], serde_json::json!(["2024-06"]));
    assert_eq!(names(&all, "vehicle_owner"), [("陈*", "2026-06")]);
    assert_eq!(names(&all, "company_owner"), [("刘*", "2026-06")]);
    let company = all.iter().find(|f| f.rule_id == "company_owner").unwrap();
    assert!(
        company.evidence_json.contains("法定代表人"),
        "{}",
        company.evidence_json
    );
    assert_eq!(names(&all, "property_owner"), [("周*", "2026-06")]);
    let property = all.iter().find(|f| f.rule_id == "property_owner").unwrap();
    assert!(
        property.evidence_json.contains("18050"),
        "{}",
        property.evidence_json
    );
    assert_eq!(names(&all, "paid_after_moving_out"), [("吴*", "2026-06")]);
    assert_eq!(all.len(), 6, "nothing else: {all:#?}");
    // Evidence names facts by id, never an ID number.
    for f in &all {
        for r in [&clerk, &cadre, &car, &boss, &villa, &gone] {
            assert!(!f.evidence_json.contains(id(r)));
        }
    }
}

#[tokio::test]
async fn ages_come_from_the_id_number_and_standards_by_age_band() {
    let young = person("A-1", "覃少", (1950, 3, 1), 11, "户主");
    let old = person("A-2", "覃老", (1940, 3, 1), 12, "户主");
    let oldest = person("A-3", "覃寿", (1931, 3, 1), 13, "户主");
    let (app, _) = app_with(vec![young.clone(), old.clone(), oldest.clone()]).await;
    record(
        &app,
        "elderly.csv",
        &[
            // 76: too young for 高龄津贴.
            pay(&young, "ELDERLY", "2026-06", "50"),
            // 86 at the 80–89 band's 50 yuan: fine; at 100 yuan, above its band.
            pay(&old, "ELDERLY", "2026-05", "50"),
            pay(&old, "ELDERLY", "2026-06", "100"),
            // 95 at 100 yuan: the 90–99 band's standard, a near miss.
            pay(&oldest, "ELDERLY", "2026-06", "100"),
        ],
    )
    .await;
    run_full(&app).await;
    let all = findings(&app).await;

    assert_eq!(names(&all, "age_out_of_range"), [("覃*", "2026-06")]);
    assert_eq!(
        all.iter()
            .find(|f| f.rule_id == "age_out_of_range")
            .unwrap()
            .person_key
            .len(),
        64
    );
    let above: Vec<&Finding> = all
        .iter()
        .filter(|f| f.rule_id == "above_standard")
        .collect();
    assert_eq!(above.len(), 1, "{all:#?}");
    assert_eq!(
        (above[0].period.as_str(), above[0].amount_fen),
        ("2026-06", 10_000)
    );
    assert_eq!(all.len(), 2, "{all:#?}");
}

#[tokio::test]
async fn a_grant_to_a_household_split_from_one_granted_before_is_found() {
    let head = person("R-1", "莫大", (1950, 1, 1), 91, "户主");
    let son = person("R-1", "莫小", (1978, 1, 1), 93, "子");
    let stranger = person("R-3", "冯某", (1960, 1, 1), 95, "户主");
    let (app, _) = app_with(vec![head.clone(), son.clone(), stranger.clone()]).await;
    // The son set up his own household in 2021 (the register's history, dated).
    let moved = Resident {
        household: "R-2".to_owned(),
        relation: "户主".to_owned(),
        ..son.clone()
    };
    crate::helpers::import_persons_named(
        &app,
        "split.csv",
        crate::helpers::persons_csv(std::slice::from_ref(&moved)).as_bytes(),
    )
    .await
    .expect("the split");
    backdate_households(&app).await;
    let mut identity = app.db_schema("identity").await;
    sqlx::query(
        "UPDATE person_facts f SET until = CASE WHEN f.attrs->>'household_code' = 'R-1' THEN DATE '2020-12-31' END,
                                   since = CASE WHEN f.attrs->>'household_code' = 'R-2' THEN DATE '2021-01-01' ELSE f.since END
         FROM persons p WHERE p.id = f.person_id AND f.kind = 'household_member' AND p.name = '莫小'",
    )
    .execute(&mut identity)
    .await
    .unwrap();
    record(
        &app,
        "renovation.csv",
        &[
            pay(&head, "HOUSE_RENOVATION", "2019", "20000"),
            pay(&moved, "HOUSE_RENOVATION", "2024", "20000"),
            pay(&stranger, "HOUSE_RENOVATION", "2024", "20000"),
        ],
    )
    .await;
    run_full(&app).await;
    let all = findings(&app).await;

    let repeated: Vec<&Finding> = all
        .iter()
        .filter(|f| f.rule_id == "grant_repeated")
        .collect();
    assert_eq!(repeated.len(), 1, "{all:#?}");
    assert_eq!(
        repeated[0].household_code, "R-1",
        "listed under the first grant"
    );
    let evidence: serde_json::Value = serde_json::from_str(&repeated[0].evidence_json).unwrap();
    assert_eq!(evidence["payment_count"], 2);
    assert_eq!(evidence["detail"]["first_household"], "R-1");
    assert_eq!(all.len(), 1, "{all:#?}");
}
