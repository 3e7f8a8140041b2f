//! Health, readiness, metrics, degraded dependencies and graceful shutdown.

use std::time::{Duration, Instant};

use huimin_kit::auth::Role;
use huimin_proto::identity::v1::{BindOpenIdRequest, LoginRequest, ResolveOpenIdRequest};
use sqlx::Executor as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    helpers::{Options, TestApp, authed, import_persons, persons_csv, residents},
    staff::add_staff,
};

const IDENTITY: &str = "huimin.identity.v1.IdentityService";

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let response = HealthClient::new(app.channel.clone())
        .check(request)
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

async fn wait_for(app: &TestApp, wanted: ServingStatus) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if status(app, IDENTITY).await == wanted {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health did not become {wanted:?} within 15s");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

#[tokio::test]
async fn health_is_not_serving_while_the_database_is_unreachable_and_recovers() {
    let app = TestApp::spawn_with(Options {
        proxy_db: true,
        ..Options::default()
    })
    .await;
    wait_for(&app, ServingStatus::Serving).await;
    let proxy = app.db_proxy.as_ref().unwrap();

    proxy.cut();
    wait_for(&app, ServingStatus::NotServing).await;
    let (ready_while_down, _) = http_get(app.admin_addr, "/readyz").await;
    proxy.restore();
    wait_for(&app, ServingStatus::Serving).await;
    let (ready_after, _) = http_get(app.admin_addr, "/readyz").await;

    assert_eq!(ready_while_down, 503);
    assert_eq!(ready_after, 200);
}

#[tokio::test]
async fn admin_port_serves_liveness_and_request_metrics() {
    let app = TestApp::spawn().await;
    wait_for(&app, ServingStatus::Serving).await;
    let _ = app
        .identity()
        .login(LoginRequest {
            username: "nobody".into(),
            password: "x".into(),
        })
        .await;

    let (live, _) = http_get(app.admin_addr, "/healthz").await;
    let (_, metrics) = http_get(app.admin_addr, "/metrics").await;

    assert_eq!(live, 200);
    assert!(
        metrics.contains(r#"grpc_server_requests_total{method="/huimin.identity.v1.IdentityService/Login",code="UNAUTHENTICATED"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("grpc_server_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"db_pool_connections{service="huimin.identity.v1.IdentityService",state="open"}"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn cached_reads_are_counted_by_outcome() {
    let app = TestApp::spawn().await;
    wait_for(&app, ServingStatus::Serving).await;
    let search = || huimin_proto::registry::v1::SearchProjectsRequest {
        village_code: "450923106201".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        app.registry().search_projects(search()).await.unwrap();
    }

    let (_, metrics) = http_get(app.admin_addr, "/metrics").await;

    for outcome in ["miss", "hit"] {
        assert!(
            metrics.contains(&format!(r#"cache_reads_total{{outcome="{outcome}"}}"#)),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn lookups_are_answered_while_redis_is_cut() {
    let app = TestApp::spawn_with(Options {
        proxy_redis: true,
        ..Options::default()
    })
    .await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    let gateway = app.token(Role::Gateway, None);
    let bind = BindOpenIdRequest {
        openid: "oWx-redis".into(),
        id_number: people[0].id_number.expose().into(),
        name: people[0].name.clone(),
    };
    app.identity()
        .bind_open_id(authed(bind, &gateway))
        .await
        .unwrap();
    let resolve = || ResolveOpenIdRequest {
        openid: "oWx-redis".into(),
    };
    app.identity()
        .resolve_open_id(authed(resolve(), &gateway))
        .await
        .unwrap();
    let mut redis = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cached: bool = redis::cmd("EXISTS")
        // Kept under the openid's binding generation, in its slot (docs/scaling.md).
        .arg(format!(
            "{}identity:openid:oWx-redis{{identity:openid:oWx-redis:generation}}",
            app.redis_prefix
        ))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(cached, "the first resolve fills the cache");

    app.redis_proxy.as_ref().unwrap().cut();
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            app.identity()
                .resolve_open_id(authed(resolve(), &gateway))
                .await
                .unwrap()
                .into_inner()
                .persons,
        );
    }
    let elapsed = started.elapsed();

    assert!(
        answers
            .iter()
            .all(|persons| persons.len() == 1 && persons[0].name == "庞秀英")
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "degraded lookups took {elapsed:?}"
    );
}

#[tokio::test]
async fn shutdown_finishes_the_in_flight_call_then_exits_cleanly() {
    let mut app = TestApp::spawn_with(Options {
        shutdown_grace: Some(Duration::from_secs(10)),
        ..Options::default()
    })
    .await;
    add_staff(
        &app,
        "late.caller",
        Role::Inspector,
        None,
        "late caller password",
    )
    .await;
    // Hold the staff table so a login stays in flight until we let go.
    let mut blocker = app.db().await;
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE staff IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut client = app.identity();
    let in_flight = tokio::spawn(async move {
        client
            .login(LoginRequest {
                username: "late.caller".into(),
                password: "late caller password".into(),
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let server = app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still_running = !server.is_finished();
    let refused = tokio::net::TcpStream::connect(app.grpc_addr).await.is_err();
    blocker.execute("COMMIT").await.unwrap();
    let login = in_flight.await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .unwrap();

    assert!(still_running, "the server waits for the in-flight call");
    assert!(refused, "no new connections once shutdown began");
    assert!(login.is_ok(), "in-flight call completed: {login:?}");
    assert!(exit.is_ok(), "server exits cleanly: {exit:?}");
}
