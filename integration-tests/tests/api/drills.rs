//! Operations drills under steady load (docs/operations.md, "Drills"): a stop signal drains
//! without a failed call, a PostgreSQL restart is over for every service within ten seconds,
//! and a stopped Redis slows lookups down but fails none. The servers restarted or stopped are
//! the test's own (`servers`), never the machine's. Each test prints its figures.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use huimin_kit::auth::Role;
use huimin_proto::{
    identity::v1::{
        BindOpenIdRequest, ListDivisionsRequest, ResolveOpenIdRequest,
        identity_service_client::IdentityServiceClient,
    },
    ledger::v1::{
        GroupBy, ListProgramsRequest, TotalsRequest, VillageDisclosureRequest,
        ledger_service_client::LedgerServiceClient,
    },
    registry::v1::{SearchProjectsRequest, registry_service_client::RegistryServiceClient},
};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    helpers::{Options, TestApp, authed, import_persons, persons_csv, residents},
    servers::{Postgres, Redis},
};

/// Calls in flight during a drill, all over the app's one HTTP/2 connection.
const WORKERS: usize = 8;

const VILLAGE: &str = "450923106201";

/// The gRPC services `serve all` runs, by their health names.
const SERVICES: [&str; 4] = [
    "huimin.identity.v1.IdentityService",
    "huimin.ledger.v1.LedgerService",
    "huimin.registry.v1.RegistryService",
    "huimin.whistle.v1.WhistleService",
];

/// The `n`th of the public lookups a citizen's menu makes; `Ok` carries a digest of the
/// answer, so a drill can tell a degraded answer from a wrong one.
async fn public_lookup(channel: &Channel, n: u64) -> Result<String, tonic::Status> {
    let ledger = || LedgerServiceClient::new(channel.clone());
    let digest = match n % 5 {
        0 => format!(
            "{:?}",
            ledger()
                .list_programs(ListProgramsRequest {})
                .await?
                .into_inner()
        ),
        1 => format!(
            "{:?}",
            IdentityServiceClient::new(channel.clone())
                .list_divisions(ListDivisionsRequest::default())
                .await?
                .into_inner()
        ),
        2 => format!(
            "{:?}",
            ledger()
                .village_disclosure(VillageDisclosureRequest {
                    village_code: VILLAGE.into(),
                    program_code: "DIBAO_RURAL".into(),
                    period: "2026-07".into(),
                    page: None,
                })
                .await?
                .into_inner()
        ),
        3 => format!(
            "{:?}",
            ledger()
                .totals(TotalsRequest {
                    group_by: GroupBy::Town as i32,
                    ..Default::default()
                })
                .await?
                .into_inner()
        ),
        _ => format!(
            "{:?}",
            RegistryServiceClient::new(channel.clone())
                .search_projects(SearchProjectsRequest {
                    village_code: VILLAGE.into(),
                    ..Default::default()
                })
                .await?
                .into_inner()
        ),
    };
    Ok(digest)
}

async fn health(channel: &Channel, service: &str) -> Option<ServingStatus> {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

async fn all_serving(channel: &Channel) -> bool {
    for service in SERVICES {
        if health(channel, service).await != Some(ServingStatus::Serving) {
            return false;
        }
    }
    health(channel, "").await == Some(ServingStatus::Serving)
}

async fn wait_all_serving(channel: &Channel, within: Duration) -> Duration {
    let started = Instant::now();
    while !all_serving(channel).await {
        assert!(
            started.elapsed() < within,
            "not every service SERVING after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// What a load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The first few failures, for the assertion message.
    errors: Mutex<Vec<String>>,
    /// The slowest answer, in microseconds.
    slowest_us: AtomicU64,
}

impl Tally {
    fn record<T>(&self, result: &Result<T, tonic::Status>, took: Duration) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.slowest_us
                    .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
            }
            Err(status) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut errors = self.errors.lock().expect("not poisoned");
                if errors.len() < 5 {
                    errors.push(status.to_string());
                }
            }
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_signal_under_load_fails_no_call_and_reports_not_serving_first() {
    let delay = Duration::from_millis(1500);
    let mut app = TestApp::spawn_with(Options {
        shutdown_grace: Some(Duration::from_secs(10)),
        env: vec![("HUIMIN_SHUTDOWN_DELAY_MS", delay.as_millis().to_string())],
        ..Options::default()
    })
    .await;
    wait_all_serving(&app.channel, Duration::from_secs(15)).await;
    let tally = Arc::new(Tally::default());
    // A health-checking client, as a load balancer: no new call here once it saw NOT_SERVING.
    let routed_away = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for worker in 0..WORKERS as u64 {
        let (channel, tally, routed_away, in_flight) = (
            app.channel.clone(),
            tally.clone(),
            routed_away.clone(),
            in_flight.clone(),
        );
        workers.spawn(async move {
            let mut n = worker;
            while !routed_away.load(Ordering::SeqCst) {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let sent = Instant::now();
                let result = public_lookup(&channel, n).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                tally.record(&result, sent.elapsed());
                n += WORKERS as u64;
            }
        });
    }
    let watcher = {
        let (channel, routed_away, grpc_addr) =
            (app.channel.clone(), routed_away.clone(), app.grpc_addr);
        tokio::spawn(async move {
            loop {
                if health(&channel, "").await != Some(ServingStatus::Serving) {
                    // Still accepting when it says NOT_SERVING: the order callers rely on.
                    let accepting = tokio::net::TcpStream::connect(grpc_addr).await.is_ok();
                    routed_away.store(true, Ordering::SeqCst);
                    return accepting;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = tally.ok();

    let signalled = Instant::now();
    let server = app.begin_shutdown();
    let in_flight_at_signal = in_flight.load(Ordering::SeqCst);
    let accepting_when_not_serving = watcher.await.unwrap();
    let routed_away_after = signalled.elapsed();
    while workers.join_next().await.is_some() {}
    let exit = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server stops within its grace")
        .unwrap();
    let stopped_after = signalled.elapsed();

    eprintln!(
        "drill sigterm: {before} calls before the signal, {in_flight_at_signal} in flight at it, \
         {} answered after it, {} failed; NOT_SERVING seen after {routed_away_after:?}, \
         server stopped after {stopped_after:?}",
        tally.ok() - before,
        tally.failed()
    );
    assert_eq!(
        tally.failed(),
        0,
        "failed calls: {:?}",
        tally.errors.lock().unwrap()
    );
    assert!(
        accepting_when_not_serving,
        "NOT_SERVING came after the server stopped accepting"
    );
    assert!(
        before > 0 && in_flight_at_signal > 0,
        "the load was running"
    );
    assert!(exit.is_ok(), "server exits cleanly: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_is_serving_within_ten_seconds_of_a_postgres_restart() {
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let app = Arc::new(
        TestApp::spawn_with(Options {
            database_server: Some(postgres.url()),
            ..Options::default()
        })
        .await,
    );
    wait_all_serving(&app.channel, Duration::from_secs(15)).await;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = JoinSet::new();
    for worker in 0..WORKERS as u64 {
        let (app, tally, stop) = (app.clone(), tally.clone(), stop.clone());
        workers.spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let result = public_lookup(&app.channel, n).await;
                tally.record(&result, sent.elapsed());
                n += WORKERS as u64;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let restarting = Instant::now();
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.restart();
        postgres
    })
    .await
    .unwrap();
    let postgres_down = restarting.elapsed();
    let serving_after = wait_all_serving(&app.channel, Duration::from_secs(10)).await;
    // And it answers, not only says so.
    let failed_before = tally.failed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    while workers.join_next().await.is_some() {}
    let failed_after_serving = tally.failed() - failed_before;

    eprintln!(
        "drill postgres restart: restart took {postgres_down:?}; every service SERVING \
         {serving_after:?} after PostgreSQL was back ({:?} after the restart began); \
         {} calls answered, {} failed while it was down, {failed_after_serving} after",
        postgres_down + serving_after,
        tally.ok(),
        failed_before
    );
    assert!(serving_after < Duration::from_secs(10));
    assert_eq!(
        failed_after_serving,
        0,
        "calls failed once every service was SERVING again: {:?}",
        tally.errors.lock().unwrap()
    );
    drop(app);
    drop(postgres);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_lookup_is_answered_and_right_while_redis_is_stopped() {
    let mut redis = Redis::start();
    let app = Arc::new(
        TestApp::spawn_with(Options {
            redis_server: Some(redis.url()),
            ..Options::default()
        })
        .await,
    );
    wait_all_serving(&app.channel, Duration::from_secs(15)).await;
    // A real-name lookup too: a bound openid resolved as the gateway does.
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    let gateway = app.token(Role::Gateway, None);
    let bind = BindOpenIdRequest {
        openid: "oWx-drill".into(),
        id_number: people[0].id_number.expose().into(),
        name: people[0].name.clone(),
    };
    app.identity()
        .bind_open_id(authed(bind, &gateway))
        .await
        .unwrap();
    // The answers with Redis up (and the cache filled): what every later answer must be.
    let mut expected = Vec::new();
    for n in 0..5 {
        expected.push(public_lookup(&app.channel, n).await.unwrap());
    }
    let resolve = |app: Arc<TestApp>, gateway: String| async move {
        app.identity()
            .resolve_open_id(authed(
                ResolveOpenIdRequest {
                    openid: "oWx-drill".into(),
                },
                &gateway,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner()))
    };
    expected.push(resolve(app.clone(), gateway.clone()).await.unwrap());
    let expected = Arc::new(expected);

    let up = Arc::new(Tally::default());
    let down = Arc::new(Tally::default());
    let wrong = Arc::new(AtomicU64::new(0));
    let redis_down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = JoinSet::new();
    for worker in 0..WORKERS as u64 {
        let (app, up, down, wrong, redis_down, stop, expected, gateway) = (
            app.clone(),
            up.clone(),
            down.clone(),
            wrong.clone(),
            redis_down.clone(),
            stop.clone(),
            expected.clone(),
            gateway.clone(),
        );
        workers.spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let tally = if redis_down.load(Ordering::SeqCst) {
                    &down
                } else {
                    &up
                };
                let which = (n % 6) as usize;
                let sent = Instant::now();
                let result = if which == 5 {
                    resolve(app.clone(), gateway.clone()).await
                } else {
                    public_lookup(&app.channel, which as u64).await
                };
                tally.record(&result, sent.elapsed());
                if result.is_ok_and(|digest| digest != expected[which]) {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                n += WORKERS as u64;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis_down.store(true, Ordering::SeqCst);
    redis.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.start_again();
    redis_down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    while workers.join_next().await.is_some() {}

    eprintln!(
        "drill redis stopped: with Redis {} answered (slowest {} ms), {} failed; \
         without it (4 s) {} answered (slowest {} ms), {} failed; {} wrong answers",
        up.ok(),
        up.slowest_us.load(Ordering::Relaxed) / 1000,
        up.failed(),
        down.ok(),
        down.slowest_us.load(Ordering::Relaxed) / 1000,
        down.failed(),
        wrong.load(Ordering::Relaxed)
    );
    assert_eq!(
        (up.failed(), down.failed()),
        (0, 0),
        "failed lookups: {:?} {:?}",
        up.errors.lock().unwrap(),
        down.errors.lock().unwrap()
    );
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "wrong answers");
    assert!(down.ok() > 0, "lookups were made while Redis was down");
}
