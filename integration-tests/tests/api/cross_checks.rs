//! Cross-checks (大数据比对) end to end: rolls through ledger's import, facts through
//! identity, the runs (background per roll, full over gRPC), findings listed, dismissed and
//! opened as whistle reports, each with the near miss that must not be found.

use std::time::{Duration, Instant};

use huimin_kit::auth::Role;
use huimin_proto::ledger::v1::{
    DismissFindingRequest, Finding, GetCheckRulesRequest, ListFindingsRequest,
    OpenFindingAsReportRequest, RollKind, RunChecksOutcome, RunChecksRequest,
};

use crate::{
    helpers::{Resident, TestApp, app_with, authed, residents},
    rolls::{RollRow, import_roll_as, roll_csv},
};

/// A roll of `kind` as an admin imports it.
pub async fn import(
    app: &TestApp,
    name: &str,
    rows: &[RollRow],
    kind: RollKind,
) -> Result<huimin_proto::ledger::v1::ImportRollResponse, tonic::Status> {
    import_roll_as(
        app,
        name,
        roll_csv(rows).as_bytes(),
        Role::Admin,
        None,
        kind,
    )
    .await
}

/// Every finding, as an inspector lists them (all pages).
pub async fn findings(app: &TestApp) -> Vec<Finding> {
    list(app, ListFindingsRequest::default()).await
}

pub async fn list(app: &TestApp, filter: ListFindingsRequest) -> Vec<Finding> {
    let mut all = Vec::new();
    let mut request = filter;
    loop {
        let page = app
            .ledger()
            .list_findings(authed(request.clone(), &app.token(Role::Inspector, None)))
            .await
            .expect("list findings")
            .into_inner();
        all.extend(page.findings);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page = Some(huimin_proto::common::v1::PageRequest {
            page_size: 0,
            page_token: page.next_page_token,
        });
    }
}

/// Waits until the roll queue is drained (the roll's background run has committed).
pub async fn settled(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut db = app.db_schema("ledger").await;
    loop {
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM check_queue")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if queued == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the roll's cross-check never ran: {}",
            crate::helpers::logs()
                .text()
                .lines()
                .filter(|l| l.contains("cross-check"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A full run over gRPC as an inspector; its outcome.
pub async fn run_full(app: &TestApp) -> RunChecksOutcome {
    let mut stream = app
        .ledger()
        .run_checks(authed(
            RunChecksRequest {},
            &app.token(Role::Inspector, None),
        ))
        .await
        .expect("run checks")
        .into_inner();
    let mut rules_seen = 0;
    while let Some(progress) = stream.message().await.expect("progress") {
        if let Some(outcome) = progress.outcome {
            assert!(rules_seen > 0, "progress came before the outcome");
            return outcome;
        }
        rules_seen = progress.rules_done;
    }
    panic!("the run ended without an outcome");
}

fn of_rule<'a>(all: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    all.iter().filter(|f| f.rule_id == rule).collect()
}

/// A row paid into an account of its own household (the default row shares one account).
fn pay(person: &Resident, program: &str, period: &str, amount: &str) -> RollRow {
    RollRow {
        bank: account_of(&person.household),
        ..RollRow::pay(person, program, period, amount)
    }
}

fn reverse(person: &Resident, program: &str, period: &str, amount: &str) -> RollRow {
    RollRow {
        bank: account_of(&person.household),
        ..RollRow::reverse(person, program, period, amount)
    }
}

/// A distinct 16-digit account per household.
pub fn account_of(household: &str) -> String {
    let n: u64 = household
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("6228{:012}", n % 1_000_000_000_000)
}

#[tokio::test]
async fn a_record_stores_a_double_payment_and_a_repeated_grant_whole_and_both_become_findings() {
    let (app, people) = app_with(residents()).await;
    let (mother, son) = (&people[0], &people[1]);
    import(
        &app,
        "first.csv",
        &[
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            pay(mother, "HOUSE_RENOVATION", "2025", "20000"),
        ],
        RollKind::PreCheck,
    )
    .await
    .expect("first roll");
    let second = [
        pay(mother, "DIBAO_RURAL", "2026-07", "300"),
        pay(son, "HOUSE_RENOVATION", "2026", "20000"),
    ];

    let refused = import(&app, "second.csv", &second, RollKind::PreCheck)
        .await
        .expect_err("a pre-payment check refuses both");
    let recorded = import(&app, "second.csv", &second, RollKind::Record)
        .await
        .expect("a record is stored whole");
    settled(&app).await;
    let all = findings(&app).await;

    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = tonic_types::StatusExt::get_details_bad_request(&refused)
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["第2行/发放期间", "第3行/项目代码"],
        "both breaches named"
    );
    assert_eq!(
        (recorded.payments, recorded.kind),
        (2, RollKind::Record as i32)
    );
    let twice = of_rule(&all, "paid_twice");
    assert_eq!(twice.len(), 1, "{all:#?}");
    assert_eq!(
        (
            twice[0].program_code.as_str(),
            twice[0].period.as_str(),
            twice[0].amount_fen
        ),
        ("DIBAO_RURAL", "2026-07", 60_000)
    );
    assert_eq!(twice[0].state, "open");
    assert_eq!(twice[0].name_masked, "庞*英");
    let evidence: serde_json::Value = serde_json::from_str(&twice[0].evidence_json).unwrap();
    assert_eq!(evidence["payment_count"], 2);
    let repeated = of_rule(&all, "grant_repeated");
    assert_eq!(repeated.len(), 1, "{all:#?}");
    assert_eq!(repeated[0].period, "2025");
    assert_eq!(all.len(), 2, "nothing else: {all:#?}");
    assert!(
        !all.iter().any(|f| f.evidence_json.contains("6228")),
        "no account number in evidence"
    );
}

#[tokio::test]
async fn a_reversal_closes_its_finding_a_dismissed_one_stays_and_nothing_is_reported_twice() {
    let (app, people) = app_with(residents()).await;
    let (mother, son, other) = (&people[0], &people[1], &people[2]);
    import(
        &app,
        "paid.csv",
        &[
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            pay(son, "DIBAO_RURAL", "2026-07", "300"),
            pay(son, "DIBAO_RURAL", "2026-07", "300"),
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    let before = findings(&app).await;
    assert_eq!(of_rule(&before, "paid_twice").len(), 2, "{before:#?}");
    let sons = before
        .iter()
        .find(|f| f.name_masked == "陈*强")
        .expect("the son's finding")
        .clone();
    let mothers = before
        .iter()
        .find(|f| f.name_masked == "庞*英")
        .expect("the mother's finding")
        .clone();

    let dismissed = app
        .ledger()
        .dismiss_finding(authed(
            DismissFindingRequest {
                finding_id: sons.id,
                reason: "银行重复扣划，已追回".to_owned(),
            },
            &app.token(Role::Inspector, None),
        ))
        .await
        .expect("dismiss")
        .into_inner();
    import(
        &app,
        "reversal.csv",
        &[reverse(mother, "DIBAO_RURAL", "2026-07", "300")],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    // Another roll elsewhere, and a full run: neither reports anything again.
    import(
        &app,
        "other.csv",
        &[pay(other, "DIBAO_RURAL", "2026-07", "300")],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    let outcome = run_full(&app).await;
    let after = findings(&app).await;

    assert_eq!(dismissed.state, "dismissed");
    assert_eq!(dismissed.reason, "银行重复扣划，已追回");
    let mut db = app.db_schema("ledger").await;
    let audited: Vec<(String, Option<i64>, serde_json::Value)> = sqlx::query_as(
        "SELECT role, finding_id, detail FROM check_audit WHERE action = 'dismiss_finding'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [(
            "inspector".to_owned(),
            Some(sons.id),
            serde_json::json!({ "reason": "银行重复扣划，已追回" })
        )]
    );
    let mothers_now = after.iter().find(|f| f.id == mothers.id).unwrap();
    assert_eq!(
        mothers_now.state, "closed",
        "the reversal removed the cause"
    );
    assert!(mothers_now.closed_at.is_some());
    let sons_now = after.iter().find(|f| f.id == sons.id).unwrap();
    assert_eq!(
        sons_now.state, "dismissed",
        "a dismissed finding stays dismissed"
    );
    assert_eq!(after.len(), 2, "no finding twice: {after:#?}");
    assert_eq!((outcome.found, outcome.closed), (0, 0), "{outcome:?}");
}

#[tokio::test]
async fn near_misses_are_not_findings() {
    let (app, people) = app_with(residents()).await;
    let (mother, son, other) = (&people[0], &people[1], &people[2]);
    import(
        &app,
        "clean.csv",
        &[
            // 低保 then 特困 in the next month: not the same period.
            pay(mother, "DIBAO_RURAL", "2026-06", "300"),
            pay(mother, "TEKUN", "2026-07", "572"),
            // Two of one household on one account: one household.
            pay(son, "DIBAO_RURAL", "2026-06", "300"),
            // At the ceiling exactly.
            pay(other, "DIBAO_RURAL", "2026-06", "440"),
            // Paid, reversed, paid again: once.
            pay(other, "DIBAO_RURAL", "2026-07", "300"),
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    import(
        &app,
        "correction.csv",
        &[
            reverse(other, "DIBAO_RURAL", "2026-07", "300"),
            pay(other, "DIBAO_RURAL", "2026-07", "310"),
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    run_full(&app).await;

    assert_eq!(findings(&app).await, Vec::<Finding>::new());
}

#[tokio::test]
async fn exclusive_programs_amounts_above_the_ceiling_and_shared_accounts_are_found() {
    let (app, people) = app_with(residents()).await;
    let (mother, son, other) = (&people[0], &people[1], &people[2]);
    import(
        &app,
        "record.csv",
        &[
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            pay(mother, "TEKUN", "2026-07", "572"),
            pay(son, "DIBAO_RURAL", "2026-07", "440.01"),
            // Another household's 低保 into the mother's account.
            RollRow {
                bank: account_of(&mother.household),
                ..RollRow::pay(other, "DIBAO_RURAL", "2026-07", "300")
            },
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    let all = findings(&app).await;

    let exclusive = of_rule(&all, "exclusive_programs");
    assert_eq!(exclusive.len(), 1, "{all:#?}");
    let evidence: serde_json::Value = serde_json::from_str(&exclusive[0].evidence_json).unwrap();
    assert_eq!(evidence["payment_count"], 2);
    let above = of_rule(&all, "above_standard");
    assert_eq!(above.len(), 1, "{all:#?}");
    assert_eq!(
        (above[0].name_masked.as_str(), above[0].amount_fen),
        ("陈*强", 44_001)
    );
    let shared = of_rule(&all, "shared_bank_account");
    assert_eq!(shared.len(), 1, "{all:#?}");
    let evidence: serde_json::Value = serde_json::from_str(&shared[0].evidence_json).unwrap();
    assert_eq!(evidence["detail"]["households"], 2);
    let masked = account_of(&mother.household);
    let masked = format!("{}********{}", &masked[..4], &masked[12..]);
    assert_eq!(evidence["detail"]["bank_account"], masked.as_str());
}

#[tokio::test]
async fn staff_act_on_findings_by_role_and_every_read_and_action_is_audited() {
    let (app, people) = app_with(residents()).await;
    let mother = &people[0];
    import(
        &app,
        "record.csv",
        &[
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    let finding = findings(&app).await.pop().expect("one finding");
    let as_role = |role: Role, scope: Option<&str>| app.token(role, scope);

    let department = app
        .ledger()
        .open_finding_as_report(authed(
            OpenFindingAsReportRequest {
                finding_id: finding.id,
            },
            &as_role(Role::Department, Some("博白县民政局")),
        ))
        .await
        .expect_err("a department may not file it");
    let other_town = app
        .ledger()
        .list_findings(authed(
            ListFindingsRequest::default(),
            &as_role(Role::Town, Some("450923100")),
        ))
        .await
        .unwrap()
        .into_inner();
    let own_town = app
        .ledger()
        .list_findings(authed(
            ListFindingsRequest::default(),
            &as_role(Role::Town, Some("450923106")),
        ))
        .await
        .unwrap()
        .into_inner();
    let reported = app
        .ledger()
        .open_finding_as_report(authed(
            OpenFindingAsReportRequest {
                finding_id: finding.id,
            },
            &as_role(Role::Inspector, None),
        ))
        .await
        .expect("an inspector files it")
        .into_inner();
    let again = app
        .ledger()
        .dismiss_finding(authed(
            DismissFindingRequest {
                finding_id: finding.id,
                reason: "重复".to_owned(),
            },
            &as_role(Role::Inspector, None),
        ))
        .await
        .expect_err("a reported finding is decided");
    let rules = app
        .ledger()
        .get_check_rules(authed(
            GetCheckRulesRequest {},
            &as_role(Role::Auditor, None),
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(department.code(), tonic::Code::PermissionDenied);
    assert!(other_town.findings.is_empty());
    assert_eq!(own_town.findings.len(), 1);
    assert_eq!(reported.state, "reported");
    assert!(!reported.report_number.is_empty());
    assert_eq!(again.code(), tonic::Code::InvalidArgument);
    assert!(rules.json.contains("paid_after_death"));
    // whistle holds it as a system report with the evidence.
    let mut whistle = app.db_schema("whistle").await;
    let (source, text): (String, String) =
        sqlx::query_as("SELECT source, text FROM reports WHERE number = $1")
            .bind(&reported.report_number)
            .fetch_one(&mut whistle)
            .await
            .unwrap();
    assert_eq!(source, "system");
    assert!(text.contains("同一期间重复发放"), "{text}");
    assert!(text.contains("庞*英"), "{text}");
    // Every read and action, by whom.
    let mut ledger = app.db_schema("ledger").await;
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, role FROM check_audit ORDER BY id")
            .fetch_all(&mut ledger)
            .await
            .unwrap();
    let actions: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("list_findings", "inspector"),
            ("list_findings", "town"),
            ("list_findings", "town"),
            ("report_finding", "inspector"),
            ("get_check_rules", "auditor"),
        ]
    );
}

#[tokio::test]
async fn staff_change_a_rules_threshold_and_the_next_run_follows_it_with_metrics_to_match() {
    use huimin_proto::ledger::v1::CheckRules;
    let (app, people) = app_with(residents()).await;
    let (mother, other) = (&people[0], &people[2]);
    import(
        &app,
        "record.csv",
        &[
            pay(mother, "DIBAO_RURAL", "2026-07", "300"),
            RollRow {
                bank: account_of(&mother.household),
                ..RollRow::pay(other, "DIBAO_RURAL", "2026-07", "300")
            },
        ],
        RollKind::Record,
    )
    .await
    .unwrap();
    settled(&app).await;
    let before = findings(&app).await;
    assert_eq!(
        of_rule(&before, "shared_bank_account").len(),
        1,
        "{before:#?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("findings_open{rule=\"shared_bank_account\",town=\"450923100\"} 1"),
        "{metrics}"
    );

    let inspector = app.token(Role::Inspector, None);
    let current = app
        .ledger()
        .get_check_rules(authed(GetCheckRulesRequest {}, &inspector))
        .await
        .unwrap()
        .into_inner();
    let typo = current
        .json
        .replace("\"min_households\": 2", "\"min_household\": 3");
    let refused = app
        .ledger()
        .set_check_rules(authed(
            CheckRules {
                json: typo,
                version: 0,
            },
            &inspector,
        ))
        .await
        .expect_err("an unknown parameter is refused");
    let auditor = app
        .ledger()
        .set_check_rules(authed(
            CheckRules {
                json: current.json.clone(),
                version: 0,
            },
            &app.token(Role::Auditor, None),
        ))
        .await
        .expect_err("an auditor reads the rules, never changes them");
    let edited = current
        .json
        .replace("\"min_households\": 2", "\"min_households\": 3");
    assert_ne!(edited, current.json);
    let stored = app
        .ledger()
        .set_check_rules(authed(
            CheckRules {
                json: edited,
                version: 0,
            },
            &inspector,
        ))
        .await
        .expect("a valid edit is stored")
        .into_inner();
    let outcome = run_full(&app).await;
    let after = findings(&app).await;
    let metrics = app.metrics().await;

    assert_eq!(current.version, 0, "the built-in defaults");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("格式错误"),
        "{}",
        refused.message()
    );
    assert_eq!(auditor.code(), tonic::Code::PermissionDenied);
    assert_eq!(stored.version, 1);
    assert!(stored.json.contains("\"min_households\": 3"));
    assert_eq!(outcome.closed, 1, "two households no longer make a finding");
    assert_eq!(of_rule(&after, "shared_bank_account")[0].state, "closed");
    assert!(
        metrics.contains("findings_open{rule=\"shared_bank_account\",town=\"450923100\"} 0"),
        "{metrics}"
    );
}

/// A second full run asked for while one is going is refused with a reason, not held as
/// another task that would wait for the first and repeat it; once the first ends, a run
/// starts again.
#[tokio::test]
async fn a_second_full_run_while_one_is_going_is_refused() {
    let app = TestApp::spawn().await;
    // The runs' lock, held here, keeps the first run waiting inside its transaction.
    let run_lock: i64 = 0x6875_696d_696e_4331;
    let mut holder = app.db().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(run_lock)
        .execute(&mut holder)
        .await
        .expect("lock");
    let token = app.token(Role::Inspector, None);
    let mut first = app
        .ledger()
        .run_checks(authed(RunChecksRequest {}, &token))
        .await
        .expect("the first run starts")
        .into_inner();
    let second = app
        .ledger()
        .run_checks(authed(RunChecksRequest {}, &token))
        .await
        .expect_err("a second run while the first is going");
    assert_eq!(second.code(), tonic::Code::ResourceExhausted);
    assert!(
        second.message().contains("正在进行"),
        "{}",
        second.message()
    );

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(run_lock)
        .execute(&mut holder)
        .await
        .expect("unlock");
    let mut ended = false;
    while let Some(progress) = first.message().await.expect("progress") {
        ended |= progress.outcome.is_some();
    }
    assert!(ended, "the first run ended with an outcome");
    run_full(&app).await;
}
