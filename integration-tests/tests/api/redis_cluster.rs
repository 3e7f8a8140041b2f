//! The suite on a real Redis Cluster that the test starts (redis-server in cluster mode on
//! free 127.0.0.1 ports): citizen lookups through ledger, the cache invalidated by a roll
//! import, webhook MsgId dedupe and the rate limits; and the failover drill, one master
//! killed under load (docs/scaling.md, "Redis Cluster").

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use huimin_gateway::limits::{Action, Caller, Limiter, LimitsConfig};
use huimin_kit::{
    cache::Cache,
    config::{Env, RedisConfig},
    openid::OpenId,
};
use huimin_proto::ledger::v1::VillageDisclosureRequest;

use crate::{
    helpers::{Options, TEST_WECHAT_AES_KEY, TestApp, import_persons, persons_csv, residents},
    ledger_import::person_key,
    ledger_lookup::{bind, payments_as_citizen},
    rolls::{RollRow, import_csv},
    scale_servers::RedisCluster,
    webhook::{crypt, exchange, metric, reply_text, safe_push, text_xml},
};

async fn app_on(cluster: &RedisCluster) -> TestApp {
    TestApp::spawn_with(Options {
        env: vec![("HUIMIN_REDIS_CLUSTER_URLS", cluster.urls())],
        ..Options::default()
    })
    .await
}

/// A second replica's view of the same cluster, as another gateway pod has.
fn cluster_cache(cluster: &RedisCluster, prefix: &str) -> Cache {
    let env = Env::from_pairs([
        ("HUIMIN_REDIS_CLUSTER_URLS", cluster.urls()),
        ("HUIMIN_REDIS_PREFIX", prefix.to_owned()),
    ]);
    Cache::new(&RedisConfig::from_env(&env).expect("cluster config"))
}

#[tokio::test]
async fn lookups_invalidation_dedupe_and_limits_work_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let app = app_on(&cluster).await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    bind(&app, "oWx-cluster", &people[0]).await;
    let key = person_key(&app, &people[0]).await;

    // A citizen's lookup is cached in the cluster, in the slot of its generation counter.
    let before = payments_as_citizen(&app, "oWx-cluster", &key)
        .await
        .unwrap();
    let again = payments_as_citizen(&app, "oWx-cluster", &key)
        .await
        .unwrap();
    let cached = cluster.keys(&format!("{}ledger:person:{key}:*", app.redis_prefix));
    assert_eq!(cached.len(), 1, "the lookup was cached: {cached:?}");
    assert!(
        cached[0].ends_with("{ledger:payments:generation}"),
        "{cached:?}"
    );

    // A roll import moves the generation on: the next lookup sees the new payment.
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170")],
    )
    .await
    .unwrap();
    let after = payments_as_citizen(&app, "oWx-cluster", &key)
        .await
        .unwrap();
    assert_eq!(before, [17_000]);
    assert_eq!(again, before);
    assert_eq!(after, [17_000, 17_000]);

    // WeChat retries one MsgId three times at once, then once more: it runs once.
    let gateway = app.http_addrs[0];
    let aes = crypt(TEST_WECHAT_AES_KEY);
    let xml = text_xml("o-cluster-retried", "帮助", 6054768590064713999);
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        let (target, body) = safe_push(&aes, &xml);
        deliveries.push(tokio::spawn(async move {
            exchange(gateway, "POST", &target, body.as_bytes()).await
        }));
    }
    let mut replies = Vec::new();
    for delivery in deliveries {
        let (code, body) = delivery.await.unwrap();
        assert_eq!(code, 200, "{body}");
        replies.push(body);
    }
    let (target, body) = safe_push(&aes, &xml);
    replies.push(exchange(gateway, "POST", &target, body.as_bytes()).await.1);
    let texts: Vec<String> = replies.iter().map(|r| reply_text(r, Some(&aes))).collect();
    assert!(
        texts.iter().all(|t| t == &texts[0] && !t.is_empty()),
        "{texts:?}"
    );
    assert_eq!(metric(&app, "webhook_work_runs_total").await, 1);

    // Two gateway replicas share one count per caller: five binds an hour between them.
    let limits = LimitsConfig::from_env(&Env::default()).unwrap();
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let (one, two) = (
        Limiter::new(limits, cluster_cache(&cluster, &prefix)),
        Limiter::new(limits, cluster_cache(&cluster, &prefix)),
    );
    let caller = Caller {
        openid: Some(OpenId::parse("oWx-guesser").unwrap()),
        ip: None,
    };
    let mut allowed = 0;
    for attempt in 0..8 {
        let limiter = if attempt % 2 == 0 { &one } else { &two };
        if limiter.check(Action::Bind, &caller).await.is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 5,
        "the limit is counted in the cluster, not per replica"
    );

    // No command was refused for naming keys in two slots. (The process's metrics are
    // shared by every test in it, so the log is asked, not `cache_errors_total`.)
    let logged = crate::helpers::logs().text().to_lowercase();
    assert!(
        !logged.contains("crossslot"),
        "a multi-key command spanned slots"
    );
}

/// Load: citizens' lookups and the village disclosure list, one after another per task.
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    slowest_ms: AtomicU64,
    stop: AtomicBool,
}

#[tokio::test]
async fn a_master_killed_under_load_fails_over_and_every_lookup_is_answered() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let app = Arc::new(app_on(&cluster).await);
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "180"),
        ],
    )
    .await
    .unwrap();
    bind(&app, "oWx-drill", &people[0]).await;
    let key = person_key(&app, &people[0]).await;
    let village = people[0].village.clone();
    let expected = payments_as_citizen(&app, "oWx-drill", &key).await.unwrap();

    let load = Arc::new(Load {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        slowest_ms: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (app, load, key, village, expected) = (
            app.clone(),
            load.clone(),
            key.clone(),
            village.clone(),
            expected.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !load.stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answered = if worker % 2 == 0 {
                    payments_as_citizen(&app, "oWx-drill", &key)
                        .await
                        .is_ok_and(|paid| paid == expected)
                } else {
                    app.ledger()
                        .village_disclosure(VillageDisclosureRequest {
                            village_code: village.clone(),
                            program_code: "DIBAO_RURAL".into(),
                            period: "2026-07".into(),
                            page: None,
                        })
                        .await
                        .is_ok_and(|r| !r.into_inner().entries.is_empty())
                };
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                load.slowest_ms.fetch_max(ms, Ordering::Relaxed);
                let counter = if answered { &load.ok } else { &load.failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    const STEADY: Duration = Duration::from_secs(5);
    tokio::time::sleep(STEADY).await;
    let before_kill = load.ok.load(Ordering::Relaxed);
    // The master holding ledger's payment entries (their counter's slot).
    let master = cluster.master_of(&format!(
        "{}{{ledger:payments:generation}}",
        app.redis_prefix
    ));
    let killed_at = Instant::now();
    cluster.kill(master);
    cluster
        .wait_failed_over(master, Duration::from_secs(30))
        .await;
    let failover = killed_at.elapsed();
    let during = load.ok.load(Ordering::Relaxed) - before_kill;
    // The client follows the new map within a moment; then the cluster serves as before.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_failover = load.ok.load(Ordering::Relaxed);
    let errors_settled = metric(&app, "cache_errors_total").await;
    let hits_settled = metric(&app, "cache_reads_total{outcome=\"hit\"}").await;
    tokio::time::sleep(STEADY).await;
    let hits_after = metric(&app, "cache_reads_total{outcome=\"hit\"}").await;
    let errors_after = metric(&app, "cache_errors_total").await - errors_settled;
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let (ok, failed) = (
        load.ok.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
    );
    let errors = metric(&app, "cache_errors_total").await;
    let unavailable = metric(&app, "cache_reads_total{outcome=\"unavailable\"}").await;
    let per_second = |calls: u64, over: Duration| calls as f64 / over.as_secs_f64();
    eprintln!(
        "failover drill: master :{master} killed; replica promoted and cluster ok after \
         {failover:.1?}; calls {ok} answered, {failed} failed; calls/s {:.0} before the \
         kill, {:.0} during failover, {:.0} after; slowest call {} ms; redis errors \
         {errors} in all, {errors_after} after failover; reads served from the database \
         for want of redis {unavailable}; cache hits after failover {}",
        per_second(before_kill, STEADY),
        per_second(during, failover),
        per_second(ok - after_failover, STEADY),
        load.slowest_ms.load(Ordering::Relaxed),
        hits_after - hits_settled,
    );
    assert_eq!(failed, 0, "every call was answered, and answered right");
    assert!(
        during > 0,
        "calls were answered while the cluster failed over"
    );
    // A straggler may still time out while the client takes the new slot map.
    assert!(
        errors_after * 100 <= ok - after_failover,
        "the cluster serves again after failover ({errors_after} errors)"
    );
    assert!(
        hits_after > hits_settled,
        "the cache serves again after failover"
    );
}
