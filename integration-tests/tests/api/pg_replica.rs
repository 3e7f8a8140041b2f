//! Reads that may be a moment stale go to a streaming replica when
//! HUIMIN_DATABASE_REPLICA_URL is set: a primary and a replica started by the test
//! (initdb, pg_basebackup -R), the provincial export served from the replica.

use std::time::Duration;

use huimin_kit::{auth::Role, config::Env};
use huimin_proto::ledger::v1::ExportPaymentsRequest;
use sqlx::{Connection as _, Executor as _, PgConnection};

use crate::{
    helpers::{Options, TestApp, authed, import_persons, persons_csv, residents},
    rolls::{RollRow, import_csv},
    scale_servers::PgPrimaryAndReplica,
};

/// Every payment of the export, as (period, amount in fen).
async fn export(app: &TestApp) -> Vec<(String, i64)> {
    let mut stream = app
        .ledger()
        .export_payments(authed(
            ExportPaymentsRequest {
                batch_size: 100,
                ..Default::default()
            },
            &app.token(Role::Provincial, None),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut paid = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        paid.extend(batch.payments.into_iter().map(|p| (p.period, p.amount_fen)));
    }
    paid
}

async fn export_until(app: &TestApp, count: usize) -> Vec<(String, i64)> {
    for _ in 0..100 {
        let paid = export(app).await;
        if paid.len() == count {
            return paid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the export never showed {count} payments");
}

#[tokio::test]
async fn the_export_is_read_from_the_replica_and_sees_writes_once_they_are_replayed() {
    let servers = PgPrimaryAndReplica::start().await;
    let mut admin = PgConnection::connect(&servers.primary_url("postgres"))
        .await
        .unwrap();
    admin.execute("CREATE DATABASE huimin").await.unwrap();
    huimin::migrate_all(&Env::from_pairs([(
        "DATABASE_URL",
        servers.primary_url("huimin"),
    )]))
    .await
    .unwrap();
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("DATABASE_URL", servers.primary_url("huimin")),
            ("HUIMIN_DATABASE_REPLICA_URL", servers.replica_url("huimin")),
        ],
        ..Options::default()
    })
    .await;
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
    let first = export_until(&app, 1).await;

    // Replay stopped on the replica: a roll committed on the primary is not exported.
    let mut replica = PgConnection::connect(&servers.replica_url("huimin"))
        .await
        .unwrap();
    replica
        .execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170")],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let while_paused = export(&app).await;

    // Replay resumed: the export catches up.
    replica
        .execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    let resumed = export_until(&app, 2).await;

    // The service's reading sessions are on the replica, and read-only.
    let (in_recovery, readers): (bool, i64) = sqlx::query_as(
        "SELECT pg_is_in_recovery(),
                (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'huimin-ledger-reader')",
    )
    .fetch_one(&mut replica)
    .await
    .unwrap();
    let mut reader = PgConnection::connect(&format!(
        "{}?options=-c%20default_transaction_read_only%3Don",
        servers.replica_url("huimin")
    ))
    .await
    .unwrap();
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&mut reader)
        .await
        .unwrap();

    assert_eq!(first, [("2026-07".to_owned(), 17_000)]);
    assert_eq!(while_paused, first, "served by the paused replica");
    assert_eq!(resumed.len(), 2);
    assert!(in_recovery);
    assert!(
        readers >= 1,
        "ledger's reader pool is connected to the replica"
    );
    assert_eq!(read_only, "on");
}
