//! An anonymous report cannot be ordered against timed events more finely
//! than its day: not by its photos' files, its rows' ids or transaction ids,
//! the logs, nor the audit entries of staff who listed it (issue 10, point 3).

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{
    AddInformationRequest, GetPhotoRequest, GetReportRequest, ListReportsRequest, Subject,
};
use sqlx::Row as _;

use crate::{
    helpers::{TestApp, authed, logs},
    reports::{bound_openid, phone_jpeg, report_id, request, submit, with_photo},
    whistle_submit::walk,
};

/// Everything in the attachment store, directories included: a report's
/// directory keeps its own times.
pub(crate) fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for entry in read.flatten() {
            all.push(entry.path());
            all.extend(entries(&entry.path()));
        }
    }
    all
}

pub(crate) async fn add_photo(app: &TestApp, code: &str, text: &str) {
    app.whistle()
        .add_information(authed(
            AddInformationRequest {
                receipt_code: code.to_owned(),
                client_key: "client".to_owned(),
                text: text.to_owned(),
                photos: with_photo(request("x", Subject::default(), true, ""), phone_jpeg()).photos,
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap();
}

/// Moves every held entry and every row to yesterday, in one transaction
/// (so no row's transaction id is changed apart from the others), and waits
/// for the sealer (every second in tests) to take the entries in.
pub(crate) async fn pass_the_day(db: &mut sqlx::PgConnection) {
    use sqlx::Connection as _;
    let mut tx = db.begin().await.unwrap();
    for update in [
        "UPDATE pending_audit SET day = day - 1",
        "UPDATE pending_events SET day = day - 1",
        "UPDATE reports SET received_on = received_on - 1",
        "UPDATE report_photos SET added_on = added_on - 1",
        "UPDATE report_additions SET added_on = added_on - 1",
    ] {
        sqlx::query(update).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_audit")
            .fetch_one(&mut *db)
            .await
            .unwrap();
        if held == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the day was not sealed");
}

#[tokio::test]
async fn an_anonymous_reports_photos_leave_no_file_and_are_still_served() {
    let app = TestApp::spawn().await;
    let receipt = submit(
        &app,
        with_photo(
            request("工程偷工减料", Subject::default(), true, ""),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();
    add_photo(&app, &receipt.receipt_code, "补充一张照片").await;
    let inspector = app.token(Role::Inspector, None);
    let id = report_id(&app, &receipt.report_number).await;
    let full = app
        .whistle()
        .get_report(authed(GetReportRequest { id }, &inspector))
        .await
        .unwrap()
        .into_inner();
    let photo = app
        .whistle()
        .get_photo(authed(
            GetPhotoRequest {
                photo_id: full.photos[0].id,
            },
            &inspector,
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(
        entries(&app.attachments_dir).is_empty(),
        "no file or directory whose change or birth time would date the report: {:?}",
        entries(&app.attachments_dir)
    );
    assert_eq!(full.photos.len(), 1, "the same photo is kept once");
    assert!(photo.data.starts_with(&[0xFF, 0xD8]) && photo.data.ends_with(&[0xFF, 0xD9]));
}

#[tokio::test]
async fn a_real_name_reports_photos_are_still_files() {
    let app = TestApp::spawn().await;
    let openid = "oWx-real-name-photos";
    bound_openid(&app, openid).await;

    submit(
        &app,
        with_photo(
            request("村干部优亲厚友", Subject::default(), false, openid),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();

    assert_eq!(walk(&app.attachments_dir).len(), 1);
}

#[tokio::test]
async fn photo_and_addition_ids_are_not_a_sequence() {
    let app = TestApp::spawn().await;
    let receipt = submit(&app, request("反映问题", Subject::default(), true, ""))
        .await
        .unwrap();
    for text in ["第一次补充", "第二次补充", "第三次补充"] {
        app.whistle()
            .add_information(authed(
                AddInformationRequest {
                    receipt_code: receipt.receipt_code.clone(),
                    client_key: "client".to_owned(),
                    text: text.to_owned(),
                    photos: Vec::new(),
                },
                &app.token(Role::Gateway, None),
            ))
            .await
            .unwrap();
    }
    // Three different photos: the cleaned bytes differ by a comment-free scan byte.
    for scan in [0x3Fu8, 0x1F, 0x0F] {
        let mut photo = phone_jpeg();
        let at = photo.len() - 3;
        photo[at] = scan;
        app.whistle()
            .add_information(authed(
                AddInformationRequest {
                    receipt_code: receipt.receipt_code.clone(),
                    client_key: "client".to_owned(),
                    text: String::new(),
                    photos: with_photo(request("x", Subject::default(), true, ""), photo).photos,
                },
                &app.token(Role::Gateway, None),
            ))
            .await
            .unwrap();
    }
    let mut db = app.db_schema("whistle").await;

    for table in ["report_additions", "report_photos", "pending_audit"] {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM {table} ORDER BY xmin::text::bigint"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert!(ids.len() >= 3, "{table}: {ids:?}");
        assert!(
            ids.windows(2).all(|w| (w[1] - w[0]).abs() > 1000),
            "{table} ids follow the order of writing: {ids:?}"
        );
    }
}

#[tokio::test]
async fn an_anonymous_report_leaves_no_log_line() {
    let app = TestApp::spawn().await;
    let before = logs().text().matches("report received").count();

    submit(
        &app,
        request("反映村干部吃拿卡要", Subject::default(), true, ""),
    )
    .await
    .unwrap();

    let log = logs().text();
    assert!(log.contains("serving gRPC"), "logs were captured");
    assert_eq!(
        log.matches("report received").count(),
        before,
        "a line at the instant of an anonymous submission dates it"
    );
}

#[tokio::test]
async fn a_listing_names_anonymous_reports_only_in_the_days_held_entry() {
    let app = TestApp::spawn().await;
    let openid = "oWx-real-name-listed";
    bound_openid(&app, openid).await;
    let anonymous = submit(
        &app,
        request("匿名反映低保问题", Subject::default(), true, ""),
    )
    .await
    .unwrap();
    let named = submit(
        &app,
        request("实名反映低保问题", Subject::default(), false, openid),
    )
    .await
    .unwrap();
    let (anonymous, named) = (
        report_id(&app, &anonymous.report_number).await,
        report_id(&app, &named.report_number).await,
    );
    let inspector = app.token(Role::Inspector, None);
    for _ in 0..2 {
        let listed = app
            .whistle()
            .list_reports(authed(
                ListReportsRequest {
                    limit: 50,
                    ..Default::default()
                },
                &inspector,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.reports.len(), 2, "both are shown");
    }
    let mut db = app.db_schema("whistle").await;
    let timed: Vec<String> = sqlx::query_scalar(
        "SELECT detail::text FROM audit_log WHERE action = 'reports.listed' ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT detail::text FROM pending_audit WHERE action = 'reports.listed'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    pass_the_day(&mut db).await;
    let sealed: Vec<(String, String)> = sqlx::query_as(
        "SELECT detail::text, to_char(at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US')
         FROM audit_log WHERE action = 'reports.listed' AND detail ? 'anonymous_reports'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();

    assert_eq!(timed.len(), 2, "each listing is recorded when it happens");
    for entry in &timed {
        assert!(entry.contains(&named.to_string()), "{entry}");
        assert!(!entry.contains(&anonymous.to_string()), "{entry}");
    }
    assert_eq!(
        held.len(),
        1,
        "one held entry per staff member and day: {held:?}"
    );
    assert!(held[0].contains(&anonymous.to_string()), "{held:?}");
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    assert!(sealed[0].0.contains(&anonymous.to_string()));
    assert_eq!(sealed[0].1, "00:00:00.000000");
}

#[tokio::test]
async fn sealing_rewrites_anonymous_rows_so_their_transaction_ids_do_not_order_them() {
    let app = TestApp::spawn().await;
    let openid = "oWx-real-name-xmin";
    bound_openid(&app, openid).await;
    submit(&app, request("实名一", Subject::default(), false, openid))
        .await
        .unwrap();
    let anonymous = submit(
        &app,
        with_photo(request("匿名", Subject::default(), true, ""), phone_jpeg()),
    )
    .await
    .unwrap();
    add_photo(&app, &anonymous.receipt_code, "匿名补充").await;
    let late = submit(&app, request("实名二", Subject::default(), false, openid))
        .await
        .unwrap();
    let late = report_id(&app, &late.report_number).await;
    let anonymous = report_id(&app, &anonymous.report_number).await;
    let mut db = app.db_schema("whistle").await;

    pass_the_day(&mut db).await;
    let row = sqlx::query(
        "SELECT
            (SELECT xmin::text::bigint FROM reports WHERE id = $2) AS late,
            (SELECT xmin::text::bigint FROM reports WHERE id = $1) AS report,
            (SELECT min(xmin::text::bigint) FROM report_photos WHERE report_id = $1) AS photo,
            (SELECT min(xmin::text::bigint) FROM report_additions WHERE report_id = $1) AS addition",
    )
    .bind(anonymous)
    .bind(late)
    .fetch_one(&mut db)
    .await
    .unwrap();
    let late: i64 = row.get("late");

    for column in ["report", "photo", "addition"] {
        let xmin: i64 = row.get(column);
        assert!(
            xmin > late,
            "the anonymous {column}'s transaction id ({xmin}) is not the seal's, after {late}"
        );
    }
}

#[tokio::test]
async fn an_anonymous_report_sent_with_an_openid_leaves_it_in_no_held_or_sealed_row() {
    let app = TestApp::spawn().await;
    let openid = "oWx-gateway-sent-anonymous-91c2";
    // The gateway passes the openid it verified, though the reporter chose anonymity.
    let receipt = submit(
        &app,
        with_photo(
            request("反映村干部吃拿卡要", Subject::default(), true, openid),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();
    add_photo(&app, &receipt.receipt_code, "再补充").await;
    let mut db = app.db_schema("whistle").await;
    let held = dump_tables(&mut db, &["pending_audit", "pending_events"]).await;
    let held_columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns
         WHERE table_schema = 'whistle' AND table_name IN ('pending_audit', 'pending_events')
           AND data_type NOT IN ('bigint', 'text', 'jsonb', 'date')",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    pass_the_day(&mut db).await;
    let sealed = dump_tables(&mut db, &["audit_log", "events"]).await;
    let times: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM audit_log
         UNION ALL SELECT to_char(occurred_at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS.US') FROM events",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();

    assert!(
        held.contains("report.submitted"),
        "the held rows were dumped: {held}"
    );
    assert!(!held.contains(openid), "openid in a held row");
    assert!(
        held_columns.is_empty(),
        "a held table has a time column: {held_columns:?}"
    );
    assert!(
        sealed.contains("report.received"),
        "the sealed rows were dumped"
    );
    assert!(
        !sealed.contains(openid),
        "openid in the chain or the outbox"
    );
    assert!(times.len() >= 4, "{times:?}");
    assert!(times.iter().all(|t| t == "00:00:00.000000"), "{times:?}");
}

async fn dump_tables(db: &mut sqlx::PgConnection, tables: &[&str]) -> String {
    let mut text = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(&mut *db)
                .await
                .unwrap();
        text.extend(rows);
    }
    text
}
