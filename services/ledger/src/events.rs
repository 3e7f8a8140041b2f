//! The transactional outbox: events written in the transaction of the change
//! they describe, and served in cursor order by `WatchEvents`.
//!
//! Every writer takes [`lock_writers`] before inserting, so cursors are
//! handed out in commit order and a reader that has seen cursor N has seen
//! everything below it. (Without the lock a long import could commit cursor
//! 10 after a short one committed 11, and a follower at 11 would skip it.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use huimin_proto::common::v1 as common;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tonic::Status;

use crate::LedgerError;

/// Advisory lock key serializing ledger's writers (imports and seeding).
const WRITERS_LOCK: i64 = 0x4c45_4447_4552; // "LEDGER"

const POLL_EVERY: Duration = Duration::from_millis(300);
const PAGE: i64 = 1000;

/// Takes the writers' lock for the rest of the transaction.
pub async fn lock_writers(tx: &mut PgConnection) -> Result<(), LedgerError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITERS_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Appends one event to the outbox; call with the writers' lock held.
pub async fn append(
    tx: &mut PgConnection,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), LedgerError> {
    sqlx::query("INSERT INTO events (event_id, kind, payload) VALUES ($1, $2, $3)")
        .bind(uuid::Uuid::new_v4())
        .bind(kind)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    cursor: i64,
    event_id: uuid::Uuid,
    kind: String,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
}

/// Streams events after `after` and then new ones as they commit, until the
/// receiver goes away.
pub fn watch(
    pool: PgPool,
    mut after: i64,
    kinds: Vec<String>,
) -> mpsc::Receiver<Result<common::Event, Status>> {
    let (tx, rx) = mpsc::channel(PAGE as usize);
    tokio::spawn(async move {
        loop {
            let page: Result<Vec<EventRow>, sqlx::Error> = sqlx::query_as(
                "SELECT cursor, event_id, kind, payload, occurred_at FROM events
                 WHERE cursor > $1 AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
                 ORDER BY cursor LIMIT $3",
            )
            .bind(after)
            .bind(&kinds)
            .bind(PAGE)
            .fetch_all(&pool)
            .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    let _ = tx.send(Err(Status::from(LedgerError::from(error)))).await;
                    return;
                }
            };
            let full = page.len() as i64 == PAGE;
            for row in page {
                after = row.cursor;
                let event = common::Event {
                    cursor: row.cursor,
                    event_id: row.event_id.to_string(),
                    kind: row.kind,
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: row.occurred_at.timestamp(),
                        nanos: i32::try_from(row.occurred_at.timestamp_subsec_nanos()).unwrap_or(0),
                    }),
                    payload_json: row.payload.to_string(),
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if !full {
                tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    () = tx.closed() => return,
                }
            }
        }
    });
    rx
}
