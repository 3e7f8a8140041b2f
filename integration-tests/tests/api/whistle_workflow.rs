//! The staff side of reports: every workflow step and each forbidden one,
//! scope, and the hash-chained audit trail.

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{
    FollowUpRequest, GetReportRequest, ListReportsRequest, Report, Subject, TransitionRequest,
    VerifyAuditRequest,
};
use sqlx::Executor as _;
use tonic::Code;

use crate::{
    helpers::{TestApp, authed},
    reports::{report_id, request, submit, village_subject},
};

async fn step(
    app: &TestApp,
    token: &str,
    id: i64,
    action: &str,
    department: &str,
    note: &str,
) -> Result<Report, tonic::Status> {
    let request = TransitionRequest {
        id,
        action: action.into(),
        department: department.into(),
        officer: String::new(),
        note: note.into(),
    };
    app.whistle()
        .transition(authed(request, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn new_report(app: &TestApp, subject: Subject) -> (i64, String) {
    let receipt = submit(app, request("低保评定有优亲厚友问题", subject, true, ""))
        .await
        .unwrap();
    (
        report_id(app, &receipt.report_number).await,
        receipt.receipt_code,
    )
}

#[tokio::test]
async fn a_report_goes_through_every_state_to_a_reply_the_reporter_reads() {
    let app = TestApp::spawn().await;
    let (id, code) = new_report(&app, village_subject("450923106201", "DIBAO_RURAL")).await;
    let inspector = app.token(Role::Inspector, None);
    let officer = app.token(Role::Department, Some("博白县民政局"));

    let assigned = step(&app, &inspector, id, "assign", "博白县民政局", "")
        .await
        .unwrap();
    let transferred = step(&app, &inspector, id, "transfer", "450923106", "")
        .await
        .unwrap();
    let back = step(&app, &inspector, id, "transfer", "博白县民政局", "")
        .await
        .unwrap();
    let verifying = step(&app, &officer, id, "start_verifying", "", "")
        .await
        .unwrap();
    let closed = step(
        &app,
        &officer,
        id,
        "unsubstantiate",
        "",
        "经入户核查，该户符合低保条件，评定程序合规。",
    )
    .await
    .unwrap();
    let reopened = step(&app, &inspector, id, "reopen", "", "").await.unwrap();
    let substantiated = step(
        &app,
        &inspector,
        id,
        "substantiate",
        "",
        "博纪立〔2026〕17号",
    )
    .await
    .unwrap();
    let follow = app
        .whistle()
        .follow_up(authed(
            FollowUpRequest {
                receipt_code: code,
                client_key: "c".into(),
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap()
        .into_inner();

    let states: Vec<&str> = [
        &assigned,
        &transferred,
        &back,
        &verifying,
        &closed,
        &reopened,
        &substantiated,
    ]
    .iter()
    .map(|r| r.status.as_str())
    .collect();
    assert_eq!(
        states,
        [
            "assigned",
            "assigned",
            "assigned",
            "verifying",
            "unsubstantiated",
            "verifying",
            "substantiated"
        ]
    );
    assert_eq!(transferred.assigned_department, "450923106");
    assert!(verifying.deadline.is_some() && substantiated.deadline.is_none());
    assert_eq!(follow.status, "substantiated");
    assert_eq!(follow.replies.len(), 2);
    assert!(follow.replies[0].text.contains("入户核查"));
}

#[tokio::test]
async fn steps_out_of_order_are_refused() {
    let app = TestApp::spawn().await;
    let (id, _) = new_report(&app, Subject::default()).await;
    let inspector = app.token(Role::Inspector, None);

    let verify_unassigned = step(&app, &inspector, id, "start_verifying", "", "")
        .await
        .unwrap_err();
    let close_unverified = step(&app, &inspector, id, "unsubstantiate", "", "答复")
        .await
        .unwrap_err();
    let reopen_open = step(&app, &inspector, id, "reopen", "", "")
        .await
        .unwrap_err();
    step(&app, &inspector, id, "assign", "博白县民政局", "")
        .await
        .unwrap();
    step(&app, &inspector, id, "start_verifying", "", "")
        .await
        .unwrap();
    let no_case_number = step(&app, &inspector, id, "substantiate", "", "")
        .await
        .unwrap_err();
    let no_reply = step(&app, &inspector, id, "unsubstantiate", "", "")
        .await
        .unwrap_err();
    step(
        &app,
        &inspector,
        id,
        "substantiate",
        "",
        "博纪立〔2026〕18号",
    )
    .await
    .unwrap();
    let assign_closed = step(&app, &inspector, id, "assign", "博白县民政局", "")
        .await
        .unwrap_err();
    let unknown = step(&app, &inspector, id, "delete", "", "")
        .await
        .unwrap_err();

    for refused in [
        &verify_unassigned,
        &close_unverified,
        &reopen_open,
        &assign_closed,
    ] {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    }
    assert_eq!(no_case_number.code(), Code::InvalidArgument);
    assert_eq!(no_reply.code(), Code::InvalidArgument);
    assert_eq!(unknown.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn staff_see_and_move_only_reports_within_their_scope() {
    let app = TestApp::spawn().await;
    let about_official = Subject {
        village_code: "450923111201".into(),
        official_name: "王某（镇干部）".into(),
        official_town_code: "450923111".into(),
        ..Subject::default()
    };
    let (official_report, _) = new_report(&app, about_official).await;
    let (village_report, _) =
        new_report(&app, village_subject("450923111202", "DIBAO_RURAL")).await;
    let inspector = app.token(Role::Inspector, None);
    let own_town = app.token(Role::Town, Some("450923111"));
    let other_town = app.token(Role::Town, Some("450923100"));
    let auditor = app.token(Role::Auditor, None);

    let listed: Vec<i64> = app
        .whistle()
        .list_reports(authed(ListReportsRequest::default(), &own_town))
        .await
        .unwrap()
        .into_inner()
        .reports
        .iter()
        .map(|r| r.id)
        .collect();
    let read_official = app
        .whistle()
        .get_report(authed(
            GetReportRequest {
                id: official_report,
            },
            &own_town,
        ))
        .await
        .unwrap_err();
    let read_other_town = app
        .whistle()
        .get_report(authed(GetReportRequest { id: village_report }, &other_town))
        .await
        .unwrap_err();
    let to_officials_town = step(&app, &inspector, official_report, "assign", "450923111", "")
        .await
        .unwrap_err();
    let town_assigns = step(&app, &own_town, village_report, "assign", "450923111", "")
        .await
        .unwrap_err();
    let auditor_moves = step(&app, &auditor, village_report, "assign", "博白县民政局", "")
        .await
        .unwrap_err();
    let gateway_lists = app
        .whistle()
        .list_reports(authed(
            ListReportsRequest::default(),
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap_err();

    assert_eq!(
        listed,
        [village_report],
        "the report about the town's own official is hidden from it"
    );
    assert_eq!(read_official.code(), Code::PermissionDenied);
    assert_eq!(read_other_town.code(), Code::PermissionDenied);
    assert_eq!(to_officials_town.code(), Code::FailedPrecondition);
    assert_eq!(town_assigns.code(), Code::PermissionDenied);
    assert_eq!(auditor_moves.code(), Code::PermissionDenied);
    assert_eq!(gateway_lists.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn reports_are_listed_by_status_and_an_unknown_status_is_refused() {
    let app = TestApp::spawn().await;
    submit(
        &app,
        request("村干部吃拿卡要", Subject::default(), true, ""),
    )
    .await
    .unwrap();
    let token = app.token(Role::Inspector, None);
    let list = |status: &str| {
        let mut whistle = app.whistle();
        let request = authed(
            ListReportsRequest {
                status: status.to_owned(),
                ..Default::default()
            },
            &token,
        );
        async move { whistle.list_reports(request).await }
    };

    let triaged = list("triaged").await.unwrap().into_inner().reports;
    let assigned = list("assigned").await.unwrap().into_inner().reports;
    let unknown = list("closed").await.expect_err("no such status");

    assert_eq!(triaged.len(), 1);
    assert_eq!(triaged[0].status, "triaged");
    assert!(assigned.is_empty());
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(unknown.message(), "未知的举报状态");
}

#[tokio::test]
async fn overdue_reports_are_listed() {
    let app = TestApp::spawn().await;
    let (late, _) = new_report(&app, Subject::default()).await;
    new_report(&app, Subject::default()).await;
    let mut db = app.db_schema("whistle").await;
    sqlx::query("UPDATE reports SET deadline = now() - interval '1 day' WHERE id = $1")
        .bind(late)
        .execute(&mut db)
        .await
        .unwrap();

    let overdue = app
        .whistle()
        .list_reports(authed(
            ListReportsRequest {
                overdue_only: true,
                ..Default::default()
            },
            &app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .reports;

    assert_eq!(overdue.iter().map(|r| r.id).collect::<Vec<_>>(), [late]);
    assert!(overdue[0].overdue);
}

#[tokio::test]
async fn the_audit_chain_verifies_and_then_names_the_entry_altered_in_the_database() {
    let app = TestApp::spawn().await;
    let (id, _) = new_report(&app, Subject::default()).await;
    let inspector = app.token(Role::Inspector, None);
    step(&app, &inspector, id, "assign", "博白县民政局", "")
        .await
        .unwrap();
    app.whistle()
        .get_report(authed(GetReportRequest { id }, &inspector))
        .await
        .unwrap();
    let auditor = app.token(Role::Auditor, None);
    let verify = || {
        let mut client = app.whistle();
        let token = auditor.clone();
        async move {
            client
                .verify_audit(authed(VerifyAuditRequest {}, &token))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let intact = verify().await;

    // Someone with database rights rewrites who assigned the report.
    let mut db = app.db_schema("whistle").await;
    let target: i64 =
        sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = 'report.transition'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'staff:nobody' WHERE seq = $1")
        .bind(target)
        .execute(&mut db)
        .await
        .unwrap();
    let altered = verify().await;
    // Then removes the entry instead, hoping a gap goes unnoticed.
    let next: i64 = target + 1;
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(target)
        .execute(&mut db)
        .await
        .unwrap();
    let removed = verify().await;

    assert!(intact.intact, "{intact:?}");
    assert_eq!(
        intact.entries, 2,
        "assigned, read: the anonymous submission's own entries wait for day's end"
    );
    assert!(!altered.intact);
    assert_eq!(altered.broken_at, target);
    assert!(altered.reason.contains("altered"), "{}", altered.reason);
    assert!(!removed.intact);
    assert_eq!(removed.broken_at, next);
}

#[tokio::test]
async fn huimin_audit_verify_names_the_first_bad_entry() {
    let app = TestApp::spawn().await;
    let (id, _) = new_report(&app, Subject::default()).await;
    step(
        &app,
        &app.token(Role::Inspector, None),
        id,
        "assign",
        "博白县民政局",
        "",
    )
    .await
    .unwrap();
    let url = format!(
        "postgres://{}:postgres@{}:{}/{}",
        app.db_options.get_username(),
        app.db_options.get_host(),
        app.db_options.get_port(),
        app.database
    );
    let binary = crate::ledger_crash::huimin_binary();
    let run = || {
        std::process::Command::new(&binary)
            .args(["audit", "verify"])
            .env("DATABASE_URL", &url)
            .env("REDIS_URL", crate::helpers::redis_url())
            .env("HUIMIN_ATTACHMENTS_DIR", &app.attachments_dir)
            .env("HUIMIN_AUDIT_HMAC_KEY", &app.audit_hmac_key)
            .env("HUIMIN_AUDIT_HEAD_DIR", app.audit_head_dir())
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let intact = run();
    let mut db = app.db_schema("whistle").await;
    db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .await
        .unwrap();
    db.execute("UPDATE audit_log SET detail = '{\"number\": \"forged\"}' WHERE seq = 1")
        .await
        .unwrap();
    let broken = run();

    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 1 entries"));
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("entry 1"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

#[tokio::test]
async fn progress_events_name_only_real_name_reporters() {
    let app = TestApp::spawn().await;
    crate::reports::bound_openid(&app, "oWx-follow-me").await;
    let real = submit(
        &app,
        request(
            "村里低保评定不公",
            Subject::default(),
            false,
            "oWx-follow-me",
        ),
    )
    .await
    .unwrap();
    let (anonymous, _) = new_report(&app, Subject::default()).await;
    let real = report_id(&app, &real.report_number).await;
    let inspector = app.token(Role::Inspector, None);
    step(&app, &inspector, real, "assign", "博白县民政局", "")
        .await
        .unwrap();
    step(&app, &inspector, anonymous, "assign", "博白县民政局", "")
        .await
        .unwrap();

    let request = huimin_proto::common::v1::WatchEventsRequest {
        after_cursor: 0,
        kinds: vec!["report.status_changed".into()],
    };
    let mut events = app
        .whistle()
        .watch_events(authed(request, &app.service_token("notify")))
        .await
        .unwrap()
        .into_inner();
    let first: serde_json::Value =
        serde_json::from_str(&events.message().await.unwrap().unwrap().payload_json).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&events.message().await.unwrap().unwrap().payload_json).unwrap();

    assert_eq!(first["report_id"], real);
    assert_eq!(first["status"], "assigned");
    assert_eq!(first["reporter_openid"], "oWx-follow-me");
    assert_eq!(second["report_id"], anonymous);
    assert!(second.get("reporter_openid").is_none());
}

#[tokio::test]
async fn a_cross_check_finding_is_filed_as_a_system_report() {
    let app = TestApp::spawn().await;
    let finding = huimin_proto::whistle::v1::SubmitReportRequest {
        text: "大数据比对：该人员2024-03已登记死亡，2024-04至2024-06仍领取高龄津贴".into(),
        category: "benefit_fraud".into(),
        subject: Some(village_subject("450923106201", "ELDERLY")),
        ..Default::default()
    };

    let receipt = app
        .whistle()
        .submit_report(authed(finding, &app.service_token("ledger")))
        .await
        .unwrap()
        .into_inner();
    let id = report_id(&app, &receipt.report_number).await;
    let report = app
        .whistle()
        .get_report(authed(
            GetReportRequest { id },
            &app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(report.source, "system");
    assert!(!report.anonymous);
    assert_eq!(report.triage.unwrap().category, "benefit_fraud");
}

#[tokio::test]
async fn a_report_naming_an_official_without_a_town_stays_away_from_the_village_town() {
    let app = TestApp::spawn().await;
    let subject = Subject {
        village_code: "450923114201".into(),
        official_name: "陈某（村支书）".into(),
        ..Subject::default()
    };
    let (id, _) = new_report(&app, subject).await;

    let town_reads = app
        .whistle()
        .get_report(authed(
            GetReportRequest { id },
            &app.token(Role::Town, Some("450923114")),
        ))
        .await
        .unwrap_err();
    let assigned_there = step(
        &app,
        &app.token(Role::Inspector, None),
        id,
        "assign",
        "450923114",
        "",
    )
    .await
    .unwrap_err();

    assert_eq!(town_reads.code(), Code::PermissionDenied);
    assert_eq!(assigned_there.code(), Code::FailedPrecondition);
}
