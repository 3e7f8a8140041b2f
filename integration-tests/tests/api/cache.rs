//! kit's cache across replicas: what one process holds in memory is dropped
//! when another moves the generation on.

use std::{sync::Arc, time::Duration};

use huimin_kit::{
    cache::{Cache, Current},
    config::RedisConfig,
};

fn replica(prefix: &str) -> Cache {
    Cache::new(&RedisConfig {
        url: crate::helpers::redis_url().into(),
        cluster_urls: Vec::new(),
        prefix: prefix.to_owned(),
    })
}

#[tokio::test]
async fn a_page_held_by_one_replica_is_dropped_when_another_moves_the_generation_on() {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let (reader, writer) = (replica(&prefix), replica(&prefix));
    let Current::Miss(generation) = reader.get_current::<String>("gen", "page").await else {
        panic!("an empty cache misses");
    };
    reader
        .put_current(
            "gen",
            "page",
            generation,
            &"before".to_owned(),
            Duration::from_secs(60),
        )
        .await;
    // Read twice: the second read is answered from the reader's memory.
    for _ in 0..2 {
        assert_eq!(
            reader.get_current::<String>("gen", "page").await,
            Current::Hit("before".to_owned())
        );
    }

    assert!(writer.bump_generation("gen").await);
    // Redis's invalidation reaches the reader asynchronously: allow it a moment.
    let mut after = reader.get_current::<String>("gen", "page").await;
    for _ in 0..50 {
        if !matches!(after, Current::Hit(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = reader.get_current::<String>("gen", "page").await;
    }

    assert_eq!(after, Current::Miss(generation + 1));
}

/// A hot read hands out the value the process decoded before (no decoding per read),
/// and only while the counter still holds the generation it was written under: a
/// value another replica wrote is decoded once, then shared; a bump drops it.
#[tokio::test]
async fn a_hot_read_shares_what_was_decoded_until_the_generation_moves_on() {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let (reader, writer) = (replica(&prefix), replica(&prefix));
    let Current::Miss(generation) = writer.get_current::<Vec<String>>("gen", "page").await else {
        panic!("an empty cache misses");
    };
    let page = vec!["170.00".to_owned(); 3];
    writer
        .put_current("gen", "page", generation, &page, Duration::from_secs(60))
        .await;

    let Current::Hit(first) = reader
        .get_current_shared::<Vec<String>>("gen", "page")
        .await
    else {
        panic!("the writer's page is in Redis");
    };
    assert_eq!(*first, page);
    let Current::Hit(second) = reader
        .get_current_shared::<Vec<String>>("gen", "page")
        .await
    else {
        panic!("still cached");
    };
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second read decoded again"
    );

    assert!(writer.bump_generation("gen").await);
    let mut after = reader
        .get_current_shared::<Vec<String>>("gen", "page")
        .await;
    for _ in 0..50 {
        if !matches!(after, Current::Hit(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = reader
            .get_current_shared::<Vec<String>>("gen", "page")
            .await;
    }
    assert_eq!(after, Current::Miss(generation + 1));
}

/// An invalidation made while Redis was unreachable is made again once it
/// returns, so other replicas (which never distrusted their cache) drop the
/// old page within the entry's lifetime rather than serving it to its end.
#[tokio::test]
async fn an_invalidation_lost_to_a_redis_cut_reaches_other_replicas_once_redis_returns() {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let url = crate::helpers::redis_url();
    let target = url.trim_start_matches("redis://").trim_end_matches('/');
    let proxy = crate::proxy::Proxy::start(target).await;
    let writer = Cache::new(&RedisConfig {
        url: format!("redis://{}", proxy.addr).into(),
        cluster_urls: Vec::new(),
        prefix: prefix.clone(),
    });
    let reader = replica(&prefix);
    let Current::Miss(generation) = reader.get_current::<String>("gen", "page").await else {
        panic!("an empty cache misses");
    };
    reader
        .put_current(
            "gen",
            "page",
            generation,
            &"before".to_owned(),
            Duration::from_secs(60),
        )
        .await;
    // The writer has talked to Redis before the cut, as a running replica has.
    assert!(writer.generation("gen").await.is_some());

    proxy.cut();
    writer
        .invalidate_generation("gen", Duration::from_secs(60))
        .await;
    assert_eq!(
        reader.get_current::<String>("gen", "page").await,
        Current::Hit("before".to_owned()),
        "nothing reached Redis while it was cut"
    );
    proxy.restore();

    let mut after = reader.get_current::<String>("gen", "page").await;
    for _ in 0..100 {
        if !matches!(after, Current::Hit(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = reader.get_current::<String>("gen", "page").await;
    }
    assert!(
        matches!(after, Current::Miss(g) if g > generation),
        "the other replica still serves the old page: {after:?}"
    );
}
