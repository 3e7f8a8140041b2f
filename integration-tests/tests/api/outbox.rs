//! The outbox, both sides: every producer's `events` table has kit's one shape (its old
//! rows kept through the migration), and kit's follower handles a real feed's events
//! exactly once across cut connections and restarts, resuming from its stored cursor.

use std::{borrow::Cow, time::Duration};

use futures::future::BoxFuture;
use huimin_kit::{
    auth::Role,
    follower::{Backoff, CURSORS_SQL, EventFeed, Follower, Handler},
};
use huimin_proto::{
    common::v1::{Event, WatchEventsRequest},
    registry::v1::registry_service_client::RegistryServiceClient,
};
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool, migrate::Migrator};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::{
    helpers::{TestApp, authed, drop_database, fresh_database},
    proxy::Proxy,
    registry::{admin, create, road},
};

/// The producers, their migrations, the version that brings their outbox into kit's
/// shape, and rows as their old shape took them.
fn producers() -> [(&'static str, &'static Migrator, i64, &'static str); 3] {
    [
        (
            "ledger",
            &huimin_ledger::MIGRATOR,
            8,
            "INSERT INTO events (event_id, kind, payload) VALUES
                 ('00000000-0000-0000-0000-00000000000a', 'program.changed', '{\"n\": 1}');
             INSERT INTO events (event_id, kind, payload, span) VALUES
                 ('00000000-0000-0000-0000-00000000000b', 'payment.posted', '{\"first\": 1}', 3);",
        ),
        (
            "registry",
            &huimin_registry::MIGRATOR,
            2,
            "INSERT INTO events (event_id, kind, payload) VALUES
                 ('00000000-0000-0000-0000-00000000000a', 'project.created', '{\"n\": 1}'),
                 ('00000000-0000-0000-0000-00000000000b', 'project.created', '{\"n\": 2}');",
        ),
        (
            "whistle",
            &huimin_whistle::MIGRATOR,
            4,
            "INSERT INTO events (event_id, kind, payload, occurred_at) VALUES
                 ('00000000-0000-0000-0000-00000000000a', 'report.received', '{\"n\": 1}', now()),
                 ('00000000-0000-0000-0000-00000000000b', 'report.closed', '{\"n\": 2}', now());",
        ),
    ]
}

/// The columns and constraints of `events` as PostgreSQL describes them.
async fn shape(conn: &mut PgConnection) -> Vec<String> {
    let mut shape: Vec<String> = sqlx::query_scalar(
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'events' ORDER BY column_name",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let constraints: Vec<String> = sqlx::query_scalar(
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'events'::regclass ORDER BY conname",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    shape.extend(constraints);
    shape
}

#[tokio::test]
async fn every_producer_migrates_its_old_events_into_the_one_shape() {
    let (base, database) = fresh_database().await;
    let mut shapes = Vec::new();
    for (schema, migrator, version, old_rows) in producers() {
        // A schema of its own, migrated only up to the old shape.
        let schema = format!("{schema}_old");
        let pool = PgPool::connect_with(
            base.clone()
                .database(&database)
                .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
        pool.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        let before = Migrator {
            migrations: Cow::Owned(
                migrator
                    .iter()
                    .filter(|m| m.version < version)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        before.run(&pool).await.unwrap();
        sqlx::raw_sql(old_rows).execute(&pool).await.unwrap();

        migrator.run(&pool).await.unwrap();

        let kept: Vec<(String, String, Option<i64>)> =
            sqlx::query_as("SELECT event_id::text, kind, span FROM events ORDER BY cursor")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(kept.len(), 2, "{schema}: {kept:?}");
        assert!(
            kept[0].0.ends_with('a') && kept[1].0.ends_with('b'),
            "{schema}"
        );
        // The one shape: a span column, occurred_at defaulted, event ids unique.
        sqlx::query(
            "INSERT INTO events (event_id, kind, payload) VALUES (gen_random_uuid(), 'k', '{}')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let repeated = sqlx::query(
            "INSERT INTO events (event_id, kind, payload) VALUES ('00000000-0000-0000-0000-00000000000a', 'k', '{}')",
        )
        .execute(&pool)
        .await
        .unwrap_err();
        assert_eq!(
            huimin_kit::db::violated_constraint(&repeated),
            Some("events_event_id_key"),
            "{schema}"
        );
        shapes.push(shape(&mut pool.acquire().await.unwrap()).await);
        pool.close().await;
    }
    drop_database(&base, &database).await;
    assert!(
        shapes[0].iter().any(|c| c.starts_with("span bigint YES")),
        "{:?}",
        shapes[0]
    );
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[1], shapes[2]);
}

/// Records each event in the follower's own table, in the follower's transaction.
struct Record;

impl Handler for Record {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO seen (cursor, event_id) VALUES ($1, $2::uuid)")
                .bind(event.cursor)
                .bind(&event.event_id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

/// A follower of registry's feed through `proxy`, storing its cursor in `pool`'s schema.
fn start_follower(
    app: &TestApp,
    proxy: &Proxy,
    pool: &PgPool,
) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    let channel = Channel::from_shared(format!("http://{}", proxy.addr))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy();
    let token = app.token(Role::Provincial, None);
    let feed = move |request: WatchEventsRequest| {
        let mut client = RegistryServiceClient::new(channel.clone());
        let request = authed(request, &token);
        async move {
            let events = client.watch_events(request).await?.into_inner();
            Ok(Box::pin(events) as EventFeed)
        }
    };
    let follower = Follower::new("registry", pool.clone(), feed, Record).backoff(Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_millis(400),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(follower.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Waits until the follower has recorded `count` events (or fails after a while).
async fn wait_for(pool: &PgPool, count: i64) {
    for _ in 0..200 {
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
            .fetch_one(pool)
            .await
            .unwrap();
        if seen >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the follower did not see {count} events");
}

async fn create_projects(app: &TestApp, codes: &[&str]) {
    let token = admin(app);
    for code in codes {
        create(app, road(code), &token).await.unwrap();
    }
}

#[tokio::test]
async fn a_follower_handles_every_event_once_across_cuts_and_restarts() {
    let app = TestApp::spawn().await;
    let proxy = Proxy::start(&app.grpc_addr.to_string()).await;
    let pool = PgPool::connect_with(
        app.db_options
            .clone()
            .options([("search_path", "follower")]),
    )
    .await
    .unwrap();
    let mut conn = PgConnection::connect_with(&app.db_options).await.unwrap();
    conn.execute("CREATE SCHEMA follower").await.unwrap();
    conn.close().await.unwrap();
    sqlx::raw_sql(CURSORS_SQL).execute(&pool).await.unwrap();
    pool.execute("CREATE TABLE seen (cursor bigint NOT NULL, event_id uuid NOT NULL)")
        .await
        .unwrap();

    create_projects(&app, &["F-1", "F-2", "F-3"]).await;
    let (stop, task) = start_follower(&app, &proxy, &pool);
    wait_for(&pool, 3).await;

    // The connection is cut while events are written: the follower reconnects.
    proxy.cut();
    create_projects(&app, &["F-4", "F-5"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    wait_for(&pool, 5).await;

    // Stopped, then restarted after more events: it resumes from its stored cursor.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the follower stops on shutdown")
        .unwrap();
    create_projects(&app, &["F-6", "F-7"]).await;
    let (stop, task) = start_follower(&app, &proxy, &pool);
    wait_for(&pool, 7).await;
    stop.send(()).unwrap();
    task.await.unwrap();

    // A cursor lost (set back to the start): the feed repeats itself, the ids drop it.
    pool.execute("UPDATE cursors SET cursor = 0").await.unwrap();
    let (stop, task) = start_follower(&app, &proxy, &pool);
    let mut cursor = 0;
    for _ in 0..200 {
        cursor = sqlx::query_scalar("SELECT cursor FROM cursors")
            .fetch_one(&pool)
            .await
            .unwrap();
        if cursor >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();

    let produced: Vec<i64> =
        sqlx::query_scalar("SELECT cursor FROM registry.events ORDER BY cursor")
            .fetch_all(&pool)
            .await
            .unwrap();
    let seen: Vec<i64> = sqlx::query_scalar("SELECT cursor FROM seen ORDER BY cursor")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(produced.len(), 7);
    assert_eq!(seen, produced, "every event handled exactly once");
    assert_eq!(
        cursor,
        *produced.last().unwrap(),
        "the cursor is the last event's"
    );
}
