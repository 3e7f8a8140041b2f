//! Usage figures end to end: chat messages through the local WeChat and H5
//! page views are counted by the gateway in memory, flushed to identity,
//! read by staff over gRPC, kept across a restart, and never hold an openid.

use std::time::Duration;

use huimin_kit::{auth::Role, clock::china_today};
use huimin_proto::identity::v1::{
    RecordUsageRequest, UsageCount, UsageDay, UsageFiguresRequest, UsageFiguresResponse,
};
use huimin_wechat_sim::{Mode, SimConfig, WeChatSim};
use sqlx::Row as _;
use tonic::Code;

use crate::{
    h5::Phone,
    helpers::{
        Options, TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, TestApp, authed, logs,
    },
    proxy::Proxy,
};

const CITIZENS: [&str; 2] = ["o-usage-citizen-a", "o-usage-citizen-b"];

/// Today's figures as staff read them: figure name to count.
async fn today(app: &TestApp) -> Vec<(String, u64)> {
    try_today(app).await.expect("an auditor reads the figures")
}

async fn try_today(app: &TestApp) -> Result<Vec<(String, u64)>, tonic::Status> {
    let day = china_today().to_string();
    let answer: UsageFiguresResponse = app
        .identity()
        .usage_figures(authed(
            UsageFiguresRequest {
                from: day.clone(),
                to: day.clone(),
            },
            &app.token(Role::Auditor, None),
        ))
        .await?
        .into_inner();
    assert_eq!(answer.days.len(), 1);
    assert_eq!(answer.days[0].day, day);
    Ok(answer.days[0]
        .figures
        .iter()
        .map(|f| (f.figure.clone(), f.count))
        .collect())
}

fn figure(figures: &[(String, u64)], name: &str) -> u64 {
    figures
        .iter()
        .find(|(figure, _)| figure == name)
        .unwrap_or_else(|| panic!("{name} is among the figures: {figures:?}"))
        .1
}

/// Today's figures once the flushes have brought in `chats` chat messages
/// and `pages` page views (or after 15 seconds).
async fn flushed(app: &TestApp, chats: u64, pages: u64) -> Vec<(String, u64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        // Reads fail while identity reconnects to its database.
        let late = tokio::time::Instant::now() > deadline;
        match try_today(app).await {
            Ok(figures) => {
                let arrived = figure(&figures, "chat_messages") >= chats
                    && figure(&figures, "page_views") >= pages;
                if arrived || late {
                    return figures;
                }
            }
            Err(_) if late => return today(app).await,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One message (帮助) from each openid, through the local WeChat.
async fn chat(app: &TestApp, openids: &[&str]) {
    let mut config = SimConfig::dev(&format!("http://{}/wechat", app.http_addrs[0]));
    config.token = TEST_WECHAT_TOKEN.to_owned();
    config.appid = TEST_WECHAT_APPID.to_owned();
    config.aes_key = Some(TEST_WECHAT_AES_KEY.to_owned());
    config.mode = Mode::Safe;
    let sim = WeChatSim::start(config).await.unwrap();
    for openid in openids {
        sim.send_text(openid, "帮助").await.unwrap();
    }
    sim.shutdown().await;
}

/// Waits (20 s at most) until the gateway has logged a failed flush kept for the next one.
async fn flush_failed_once(why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !logs()
        .text()
        .contains("usage flush failed; kept for the next one")
    {
        assert!(tokio::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn batch(id: &str, figure: &str, count: u64) -> RecordUsageRequest {
    RecordUsageRequest {
        batch_id: id.to_owned(),
        days: vec![UsageDay {
            day: china_today().to_string(),
            counts: vec![UsageCount {
                figure: figure.to_owned(),
                count,
            }],
            visitor_hashes: Vec::new(),
        }],
    }
}

#[tokio::test]
async fn visits_are_flushed_to_identity_kept_across_a_restart_and_hold_no_openid() {
    let mut app = TestApp::spawn_with(Options {
        env: vec![("HUIMIN_USAGE_FLUSH_SECS", "1".to_owned())],
        ..Options::default()
    })
    .await;
    assert!(
        app.tasks.contains(&"gateway.flush_usage"),
        "{:?}",
        app.tasks
    );
    assert!(app.tasks.contains(&"identity.usage"), "{:?}", app.tasks);

    chat(&app, &[CITIZENS[0], CITIZENS[0], CITIZENS[1]]).await;
    let mut phone = Phone::new(&app);
    for page in ["/h5/", "/h5/progress"] {
        assert_eq!(phone.get(page).await.0, reqwest::StatusCode::OK, "{page}");
    }

    let figures = flushed(&app, 3, 2).await;
    assert_eq!(figure(&figures, "chat_messages"), 3, "{figures:?}");
    assert_eq!(figure(&figures, "page_views"), 2, "{figures:?}");
    // The pages were opened without signing in: no visitor of their own.
    assert_eq!(figure(&figures, "distinct_visitors"), 2, "{figures:?}");
    assert_eq!(figure(&figures, "reports_submitted"), 0, "{figures:?}");

    // identity's gauges show the county's day.
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"usage_today{figure="chat_messages"} 3"#),
        "{metrics}"
    );

    // Not an openid anywhere in identity's tables, hashed visitors included.
    let mut db = app.db().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'identity' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(tables.contains(&"usage_visitors".to_owned()), "{tables:?}");
    for table in &tables {
        let row = sqlx::query(&format!(
            "SELECT count(*) FROM identity.{table} t WHERE t::text LIKE '%o-usage-citizen%'"
        ))
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>(0), 0, "an openid in identity.{table}");
    }
    let hashes: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_visitors")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(hashes, 2);
    drop(db);

    // Restarted on the same database, identity still has the day.
    app.begin_shutdown().await.unwrap().unwrap();
    let restarted = TestApp::spawn_with(Options {
        database: Some(app.database.clone()),
        ..Options::default()
    })
    .await;
    let after = today(&restarted).await;
    assert_eq!(after, figures);
}

#[tokio::test]
async fn only_the_gateway_records_and_only_staff_who_report_read() {
    let app = TestApp::spawn().await;
    let gateway = app.token(Role::Gateway, None);
    let day = china_today().to_string();
    let read = UsageFiguresRequest {
        from: day.clone(),
        to: day,
    };

    let refused = app
        .identity()
        .usage_figures(authed(read.clone(), &gateway))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = app
        .identity()
        .usage_figures(authed(
            read.clone(),
            &app.token(Role::Town, Some("450923100")),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    for role in [Role::Admin, Role::Inspector] {
        let refused = app
            .identity()
            .record_usage(authed(
                batch(&uuid::Uuid::new_v4().to_string(), "page_views", 1),
                &app.token(role, None),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{role}");
    }

    for wrong in [
        batch(&uuid::Uuid::new_v4().to_string(), "visits", 1),
        batch(&uuid::Uuid::new_v4().to_string(), "distinct_visitors", 1),
        batch("not-a-uuid", "page_views", 1),
    ] {
        let refused = app
            .identity()
            .record_usage(authed(wrong, &gateway))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{}",
            refused.message()
        );
    }
    let too_long = UsageFiguresRequest {
        from: "2024-01-01".to_owned(),
        to: "2025-12-31".to_owned(),
    };
    let refused = app
        .identity()
        .usage_figures(authed(too_long, &app.token(Role::Admin, None)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_batch_sent_twice_counts_once() {
    let app = TestApp::spawn().await;
    let gateway = app.token(Role::Gateway, None);
    let id = uuid::Uuid::new_v4().to_string();
    let mut twice = batch(&id, "reports_started", 2);
    twice.days[0].visitor_hashes = vec!["ab".repeat(32), "cd".repeat(32)];
    let first = app
        .identity()
        .record_usage(authed(twice.clone(), &gateway))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .identity()
        .record_usage(authed(twice, &gateway))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    // Another batch with one known and one new visitor: one more distinct.
    let mut other = batch(&uuid::Uuid::new_v4().to_string(), "reports_started", 1);
    other.days[0].visitor_hashes = vec!["ab".repeat(32), "ef".repeat(32)];
    app.identity()
        .record_usage(authed(other, &gateway))
        .await
        .unwrap();

    let figures = today(&app).await;
    assert_eq!(figure(&figures, "reports_started"), 3, "{figures:?}");
    assert_eq!(figure(&figures, "distinct_visitors"), 3, "{figures:?}");
}

#[tokio::test]
async fn counts_identity_could_not_record_are_sent_again_and_counted_once() {
    let app = TestApp::spawn_with(Options {
        proxy_db: true,
        env: vec![("HUIMIN_USAGE_FLUSH_SECS", "1".to_owned())],
        ..Options::default()
    })
    .await;
    let proxy = app.db_proxy.as_ref().unwrap();
    proxy.cut();
    chat(&app, &[CITIZENS[0], CITIZENS[0]]).await;
    flush_failed_once("a flush fails while identity's database is unreachable").await;
    proxy.restore();

    let figures = flushed(&app, 2, 0).await;
    assert_eq!(figure(&figures, "chat_messages"), 2, "{figures:?}");
    assert_eq!(figure(&figures, "distinct_visitors"), 1, "{figures:?}");
    // Later flushes add nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(today(&app).await, figures);
}

#[tokio::test]
async fn a_batch_recorded_but_unanswered_is_sent_again_under_its_id_and_counted_once() {
    // The gateway reaches identity through a proxy that will hold identity's answers past
    // the gateway's 3 s call timeout: a batch is recorded, its answer lost.
    let slow = Proxy::unaimed().await;
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("HUIMIN_USAGE_FLUSH_SECS", "1".to_owned()),
            ("HUIMIN_IDENTITY_URL", format!("http://{}", slow.addr)),
        ],
        ..Options::default()
    })
    .await;
    slow.aim(&app.grpc_addr.to_string());
    chat(&app, &[CITIZENS[0]]).await;
    assert_eq!(figure(&flushed(&app, 1, 0).await, "chat_messages"), 1);
    slow.delay(Duration::from_secs(4));

    chat(&app, &[CITIZENS[0], CITIZENS[1]]).await;
    // Staff read identity directly: the batch arrives although the gateway never hears so.
    let recorded = flushed(&app, 3, 0).await;
    flush_failed_once("the unanswered flush is kept for the next one").await;
    slow.delay(Duration::ZERO);
    // Resent until answered (a duplicate now), then nothing more to send.
    tokio::time::sleep(Duration::from_secs(6)).await;

    assert_eq!(figure(&recorded, "chat_messages"), 3, "{recorded:?}");
    let after = today(&app).await;
    assert_eq!(
        figure(&after, "chat_messages"),
        3,
        "counted once: {after:?}"
    );
    assert_eq!(figure(&after, "distinct_visitors"), 2, "{after:?}");
}
