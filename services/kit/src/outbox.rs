//! The transactional outbox every event-producing service shares: events are
//! written in the transaction of the change they describe (into the
//! service's own `events` table) and served in cursor order by
//! `WatchEvents`.
//!
//! Every writer takes [`Outbox::lock_writers`] before inserting, so cursors
//! are handed out in commit order and a follower that has seen cursor N has
//! seen everything below it. (Without the lock a long transaction could
//! commit cursor 10 after a short one committed 11, and a follower already
//! at 11 would never see 10.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use huimin_proto::common::v1 as common;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tonic::Status;

const POLL_EVERY: Duration = Duration::from_millis(300);
const PAGE: i64 = 1000;

/// One service's outbox, identified by the advisory lock its writers share.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    lock_key: i64,
}

impl Outbox {
    pub const fn new(lock_key: i64) -> Self {
        Self { lock_key }
    }

    /// Takes the writers' lock for the rest of the transaction.
    pub async fn lock_writers(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Appends one event; call with the writers' lock held.
    pub async fn append(
        &self,
        tx: &mut PgConnection,
        kind: &str,
        payload: &serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO events (event_id, kind, payload, occurred_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(kind)
        .bind(payload)
        .bind(occurred_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    cursor: i64,
    event_id: uuid::Uuid,
    kind: String,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
}

/// What `WatchEvents` returns.
pub type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<common::Event, Status>> + Send>>;

/// Streams events after the request's cursor, then new ones as they commit,
/// until the client goes away. `unavailable` maps a database error for it.
pub fn watch(
    pool: PgPool,
    request: common::WatchEventsRequest,
    unavailable: fn(sqlx::Error) -> Status,
) -> EventStream {
    let rx = follow(
        pool,
        request.after_cursor.max(0),
        request.kinds,
        unavailable,
    );
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn follow(
    pool: PgPool,
    mut after: i64,
    kinds: Vec<String>,
    unavailable: fn(sqlx::Error) -> Status,
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
                    let _ = tx.send(Err(unavailable(error))).await;
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
                    occurred_at: Some(crate::wire::timestamp(row.occurred_at)),
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
