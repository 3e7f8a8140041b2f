//! Reporting: anonymous and real-name submissions with photos, receipt codes,
//! EXIF removal, refused uploads, triage and escalation, and anonymity.

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{
    AddInformationRequest, FollowUpRequest, GetReportRequest, GetTriageRulesRequest, Subject,
};
use sqlx::Row as _;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{Options, TestApp, authed, logs},
    reports::{
        DEVICE, GPS, bound_openid, contains, phone_jpeg, report_id, request, submit,
        village_subject, with_photo,
    },
};

fn follow_up(code: &str, client: &str) -> FollowUpRequest {
    FollowUpRequest {
        receipt_code: code.to_owned(),
        client_key: client.to_owned(),
    }
}

#[tokio::test]
async fn an_anonymous_report_with_a_photo_is_followed_up_by_receipt_code() {
    let app = TestApp::spawn().await;
    let report = with_photo(
        request(
            "村里的危房改造补助2000元到现在都没有到账",
            village_subject("450923106201", "HOUSE_RENOVATION"),
            true,
            "",
        ),
        phone_jpeg(),
    );

    let receipt = submit(&app, report).await.unwrap();
    let status = app
        .whistle()
        .follow_up(authed(
            follow_up(&receipt.receipt_code.to_lowercase(), "client-a"),
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap()
        .into_inner();
    let full = app
        .whistle()
        .get_report(authed(
            GetReportRequest {
                id: report_id(&app, &receipt.report_number).await,
            },
            &app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        receipt.receipt_code.len(),
        24,
        "20 symbols in groups of four"
    );
    assert_eq!(status.report_number, receipt.report_number);
    assert_eq!(status.status, "triaged");
    assert!(full.anonymous);
    assert_eq!(full.photos.len(), 1);
    assert_eq!((full.photos[0].width, full.photos[0].height), (1, 1));
}

#[tokio::test]
async fn a_real_name_report_keeps_whom_to_tell_and_adds_information_later() {
    let app = TestApp::spawn().await;
    bound_openid(&app, "oWx-realname").await;
    let receipt = submit(
        &app,
        request(
            "低保评定不公平，村干部亲戚都评上了",
            Subject::default(),
            false,
            "oWx-realname",
        ),
    )
    .await
    .unwrap();

    app.whistle()
        .add_information(authed(
            AddInformationRequest {
                receipt_code: receipt.receipt_code.clone(),
                client_key: "client-b".into(),
                text: "补充：涉及的是七队的两户".into(),
                photos: vec![huimin_proto::whistle::v1::PhotoUpload {
                    file_name: "a.jpg".into(),
                    data: phone_jpeg(),
                }],
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap();

    let mut db = app.db_schema("whistle").await;
    let row = sqlx::query("SELECT anonymous, reporter_openid FROM reports")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let additions: i64 = sqlx::query_scalar("SELECT count(*) FROM report_additions")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let photos: i64 = sqlx::query_scalar("SELECT count(*) FROM report_photos")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!row.get::<bool, _>("anonymous"));
    assert_eq!(
        row.get::<Option<String>, _>("reporter_openid").as_deref(),
        Some("oWx-realname")
    );
    assert_eq!((additions, photos), (1, 1));
}

#[tokio::test]
async fn a_real_name_report_without_an_openid_is_refused() {
    let app = TestApp::spawn().await;
    let status = submit(&app, request("有人冒领补贴", Subject::default(), false, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_real_name_report_from_an_unbound_openid_is_refused() {
    let app = TestApp::spawn().await;
    let status = submit(
        &app,
        request("有人冒领补贴", Subject::default(), false, "oWx-never-bound"),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("绑定"), "{}", status.message());
}

#[tokio::test]
async fn a_wrong_receipt_code_is_refused_and_guessing_is_throttled() {
    let app = TestApp::spawn().await;
    let receipt = submit(&app, request("有人冒领补贴", Subject::default(), true, ""))
        .await
        .unwrap();
    let gateway = app.token(Role::Gateway, None);
    let mut codes = Vec::new();
    for i in 0..10 {
        let guess = format!("0000-0000-0000-0000-{i:04}");
        codes.push(
            app.whistle()
                .follow_up(authed(follow_up(&guess, "guesser"), &gateway))
                .await
                .unwrap_err()
                .code(),
        );
    }

    let throttled = app
        .whistle()
        .follow_up(authed(
            follow_up(&receipt.receipt_code, "guesser"),
            &gateway,
        ))
        .await
        .unwrap_err();
    let someone_else = app
        .whistle()
        .follow_up(authed(follow_up(&receipt.receipt_code, "owner"), &gateway))
        .await;

    assert!(codes.iter().all(|c| *c == Code::NotFound), "{codes:?}");
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    assert!(
        someone_else.is_ok(),
        "the right code from another client still works"
    );
}

#[tokio::test]
async fn stored_photos_carry_no_location_or_device_data() {
    let app = TestApp::spawn().await;
    let original = phone_jpeg();
    assert!(contains(&original, GPS) && contains(&original, DEVICE));

    submit(
        &app,
        with_photo(
            request("工程偷工减料", Subject::default(), true, ""),
            original,
        ),
    )
    .await
    .unwrap();

    // An anonymous report's photos are kept in the database, not as files.
    let mut db = app.db_schema("whistle").await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT content FROM report_photos")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "one photo stored");
    assert!(stored[0].starts_with(&[0xFF, 0xD8]) && stored[0].ends_with(&[0xFF, 0xD9]));
    assert!(!contains(&stored[0], GPS), "location removed");
    assert!(!contains(&stored[0], DEVICE), "device removed");
    assert!(!contains(&stored[0], b"Exif"), "no Exif segment left");
    assert!(
        walk(&app.attachments_dir).is_empty(),
        "an anonymous photo leaves no file whose times would date it"
    );
}

/// Every file under `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path))
            } else {
                files.push(path)
            }
        }
    }
    files
}

#[tokio::test]
async fn an_oversized_or_non_image_upload_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec();
    let mut huge = phone_jpeg();
    huge.truncate(huge.len() - 2);
    huge.extend(std::iter::repeat_n(0u8, 10 * 1024 * 1024));
    huge.extend_from_slice(&[0xFF, 0xD9]);

    let not_image = submit(
        &app,
        with_photo(
            with_photo(request("举报", Subject::default(), true, ""), phone_jpeg()),
            pdf,
        ),
    )
    .await
    .unwrap_err();
    let too_big = submit(
        &app,
        with_photo(request("举报", Subject::default(), true, ""), huge),
    )
    .await
    .unwrap_err();

    let violation = &not_image
        .get_details_bad_request()
        .unwrap()
        .field_violations[0];
    assert_eq!(violation.field, "photos[1]");
    assert!(
        violation.description.contains("JPG或PNG"),
        "{}",
        violation.description
    );
    assert!(
        too_big.get_details_bad_request().unwrap().field_violations[0]
            .description
            .contains("10MB")
    );
    let mut db = app.db_schema("whistle").await;
    let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(reports, 0);
    assert!(walk(&app.attachments_dir).is_empty(), "no file written");
}

#[tokio::test]
async fn sample_reports_in_chinese_are_triaged_and_routed() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "我们村的村支书把他亲戚都评上了低保，真正困难的人却没有",
            village_subject("450923106201", "DIBAO_RURAL"),
            "favouritism",
        ),
        (
            "我家危房改造的2000元补助到现在都没有到账",
            village_subject("450923109201", "HOUSE_RENOVATION"),
            "withholding",
        ),
        (
            "隔壁老人去年就去世了，家里人还在冒领高龄津贴",
            Subject::default(),
            "benefit_fraud",
        ),
        (
            "村里修路的工程偷工减料，水泥路一年就烂了",
            Subject::default(),
            "project",
        ),
    ];
    let mut routed = Vec::new();
    for (text, subject, _) in &cases {
        let receipt = submit(&app, request(text, subject.clone(), true, ""))
            .await
            .unwrap();
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
        routed.push(report.triage.unwrap());
    }

    let categories: Vec<&str> = routed.iter().map(|t| t.category.as_str()).collect();
    assert_eq!(categories, cases.iter().map(|c| c.2).collect::<Vec<_>>());
    assert_eq!(
        routed[1].department, "博白县住房和城乡建设局",
        "a housing grant goes to the housing department"
    );
    assert!(
        routed[2]
            .matched_keywords
            .iter()
            .any(|k| k.contains("冒领")),
        "{:?}",
        routed[2].matched_keywords
    );
}

#[tokio::test]
async fn the_third_report_about_one_official_escalates_to_discipline_inspection() {
    let app = TestApp::spawn().await;
    bound_openid(&app, "oWx-one").await;
    bound_openid(&app, "oWx-three").await;
    let about_secretary = || Subject {
        village_code: "450923111201".into(),
        official_name: "李某某（村支书）".into(),
        official_town_code: "450923111".into(),
        ..Subject::default()
    };
    let mut escalated = Vec::new();
    for (i, openid) in ["oWx-one", "", "oWx-three"].iter().enumerate() {
        let text = format!("村支书李某某收红包才给办低保（第{}封）", i + 1);
        let receipt = submit(
            &app,
            request(&text, about_secretary(), openid.is_empty(), openid),
        )
        .await
        .unwrap();
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
        escalated.push(report.triage.unwrap());
    }

    assert!(!escalated[0].escalated && !escalated[1].escalated);
    assert!(
        escalated[2].escalated,
        "the third independent report escalates"
    );
    assert_eq!(escalated[2].department, "博白县纪委监委");
    assert_eq!(escalated[2].priority, 1);
    assert_eq!(escalated[2].linked_reports.len(), 2);
}

#[tokio::test]
async fn a_second_county_escalates_to_its_own_commission_with_its_own_departments() {
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("HUIMIN_COUNTY_CODE", "450921".to_owned()),
            ("HUIMIN_COUNTY_NAME", "容县".to_owned()),
            ("HUIMIN_COUNTY_COMMISSION", "容县纪律检查委员会".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let inspector = app.token(Role::Inspector, None);
    let about_secretary = || Subject {
        village_code: "450921101201".into(),
        official_name: "黄某某（村支书）".into(),
        ..Subject::default()
    };
    let mut triaged = Vec::new();
    for i in 1..=3 {
        let text = format!("村支书黄某某收红包才给办低保（第{i}封）");
        let receipt = submit(&app, request(&text, about_secretary(), true, ""))
            .await
            .unwrap();
        let id = report_id(&app, &receipt.report_number).await;
        let report = app
            .whistle()
            .get_report(authed(GetReportRequest { id }, &inspector))
            .await
            .unwrap()
            .into_inner();
        triaged.push(report.triage.unwrap());
    }
    let rules = app
        .whistle()
        .get_triage_rules(authed(GetTriageRulesRequest {}, &inspector))
        .await
        .unwrap()
        .into_inner()
        .json;

    assert!(!triaged[1].escalated && triaged[2].escalated);
    assert_eq!(triaged[2].department, "容县纪律检查委员会");
    assert_eq!(
        triaged[0].department, "容县纪律检查委员会",
        "conduct goes to the commission"
    );
    assert!(rules.contains("\"容县民政局\""), "{rules}");
    assert!(!rules.contains("博白"), "{rules}");
}

#[tokio::test]
async fn an_anonymous_reporters_openid_reaches_neither_the_database_nor_the_logs() {
    let app = TestApp::spawn().await;
    let openid = "oWx-anonymous-secret-7f3a";
    // A careless gateway sends the openid along with an anonymous report.
    let receipt = submit(
        &app,
        with_photo(
            request("反映村干部吃拿卡要", Subject::default(), true, openid),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();
    app.whistle()
        .follow_up(authed(
            follow_up(&receipt.receipt_code, "client"),
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap();

    let mut db = app.db_schema("whistle").await;
    let mut dump = String::new();
    for table in [
        "reports",
        "report_photos",
        "report_additions",
        "report_replies",
        "audit_log",
        "events",
        "receipt_failures",
    ] {
        let rows = sqlx::query(&format!("SELECT row_to_json(t)::text FROM {table} t"))
            .fetch_all(&mut db)
            .await
            .unwrap();
        dump.extend(rows.iter().map(|r| r.get::<String, _>(0)));
    }
    let times: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM audit_log
         UNION ALL SELECT to_char(status_since AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM reports
         UNION ALL SELECT to_char(occurred_at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM events",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();

    assert!(
        dump.contains(&receipt.report_number),
        "the dump holds the report"
    );
    let next = submit(&app, request("再反映一次", Subject::default(), true, ""))
        .await
        .unwrap();
    let (a, b) = (
        report_id(&app, &receipt.report_number).await,
        report_id(&app, &next.report_number).await,
    );
    assert!(
        (a - b).abs() > 1,
        "report ids are not a sequence that would order submissions"
    );
    assert!(!dump.contains(openid), "openid stored");
    assert!(!dump.contains("127.0.0.1"), "address stored");
    assert!(
        times.iter().all(|t| t == "00:00:00.000000"),
        "a time of day was kept: {times:?}"
    );
    let log = logs().text();
    assert!(log.contains("serving gRPC"), "logs were captured");
    assert!(!log.contains(openid), "openid logged");
}

#[tokio::test]
async fn a_report_links_to_earlier_reports_about_the_same_village_without_escalating() {
    let app = TestApp::spawn().await;
    let first = submit(
        &app,
        request(
            "村里低保评定不公开",
            village_subject("450923106201", "DIBAO_RURAL"),
            true,
            "",
        ),
    )
    .await
    .unwrap();
    let second = submit(
        &app,
        request(
            "村里修路工程款去向不明",
            village_subject("450923106201", ""),
            true,
            "",
        ),
    )
    .await
    .unwrap();
    let id = report_id(&app, &second.report_number).await;

    let triage = app
        .whistle()
        .get_report(authed(
            GetReportRequest { id },
            &app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .triage
        .unwrap();

    assert_eq!(
        triage.linked_reports,
        [report_id(&app, &first.report_number).await]
    );
    assert!(!triage.escalated);
}

#[tokio::test]
async fn an_anonymous_reports_trail_joins_the_chain_only_when_its_day_is_over() {
    let app = TestApp::spawn().await;
    let receipt = submit(
        &app,
        request("反映村干部吃拿卡要", Subject::default(), true, ""),
    )
    .await
    .unwrap();
    let id = report_id(&app, &receipt.report_number).await;
    let mut db = app.db_schema("whistle").await;
    let before = actions_of(&mut db, id).await;

    // The day passes (the sealer runs every second in tests).
    sqlx::query("UPDATE pending_audit SET day = day - 1")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE pending_events SET day = day - 1")
        .execute(&mut db)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut after: Vec<String> = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        after = actions_of(&mut db, id).await;
        if !after.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let times: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM audit_log WHERE report_id = $1
         UNION ALL SELECT to_char(occurred_at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM events
         WHERE kind = 'report.received'",
    )
    .bind(id)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let verified = app
        .whistle()
        .verify_audit(authed(
            huimin_proto::whistle::v1::VerifyAuditRequest {},
            &app.token(Role::Auditor, None),
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(
        before.is_empty(),
        "nothing of the submission is in the chain the same day: {before:?}"
    );
    let mut sealed = after.clone();
    sealed.sort();
    assert_eq!(sealed, ["report.submitted", "report.triaged"]);
    assert_eq!(times.len(), 3, "two entries and the report.received event");
    assert!(times.iter().all(|t| t == "00:00:00.000000"), "{times:?}");
    assert!(verified.intact, "{verified:?}");
}

async fn actions_of(db: &mut sqlx::PgConnection, report_id: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE report_id = $1 ORDER BY seq")
        .bind(report_id)
        .fetch_all(db)
        .await
        .unwrap()
}
