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
//!
//! A change that makes a great many events of one kind (a payment roll of a
//! million rows) writes one *span* row instead of a row per event: it takes
//! `span` consecutive cursors, and the service's [`Expand`] builds the
//! events of the span from its own tables when they are read. Each expanded
//! event has its own cursor and a stable id, so a follower sees exactly what
//! it would have seen had each been written out.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use huimin_proto::common::v1 as common;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tonic::Status;

const POLL_EVERY: Duration = Duration::from_millis(300);
const PAGE: i64 = 1000;

/// Builds the events of a span row (see the module docs).
pub trait Expand: Send + Sync + 'static {
    /// The payloads of the span's events from the `skip`-th (0-based) on,
    /// at most `limit` of them, in cursor order.
    fn expand<'a>(
        &'a self,
        pool: &'a PgPool,
        kind: &'a str,
        payload: &'a serde_json::Value,
        skip: i64,
        limit: i64,
    ) -> futures::future::BoxFuture<'a, Result<Vec<serde_json::Value>, sqlx::Error>>;
}

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

    /// Appends a span of `span` events of one kind, built on reading by the
    /// service's [`Expand`] from `payload`; call with the writers' lock held.
    /// The table needs a `span bigint NOT NULL DEFAULT 1` column.
    pub async fn append_span(
        &self,
        tx: &mut PgConnection,
        kind: &str,
        payload: &serde_json::Value,
        span: i64,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        if span < 1 {
            return Ok(());
        }
        // The span's cursors, under the writers' lock.
        let first = crate::db::reserve_serial(tx, "events", "cursor", span).await?;
        sqlx::query(
            "INSERT INTO events (cursor, event_id, kind, payload, occurred_at, span)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(first)
        .bind(uuid::Uuid::new_v4())
        .bind(kind)
        .bind(payload)
        .bind(occurred_at)
        .bind(span)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// The id of the `offset`-th event of a span: derived from the span's, so
/// a re-read gives the same id and consumers' deduplication holds.
fn spanned_id(span_id: uuid::Uuid, offset: i64) -> uuid::Uuid {
    let (high, low) = span_id.as_u64_pair();
    uuid::Uuid::from_u64_pair(high, low.wrapping_add(offset.unsigned_abs()))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    cursor: i64,
    span: i64,
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
    watch_expanding(pool, request, unavailable, None)
}

/// [`watch`] for an outbox with span rows, which `expand` builds the events of.
pub fn watch_expanding(
    pool: PgPool,
    request: common::WatchEventsRequest,
    unavailable: fn(sqlx::Error) -> Status,
    expand: Option<Arc<dyn Expand>>,
) -> EventStream {
    let rx = follow(
        pool,
        request.after_cursor.max(0),
        request.kinds,
        unavailable,
        expand,
    );
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn follow(
    pool: PgPool,
    mut after: i64,
    kinds: Vec<String>,
    unavailable: fn(sqlx::Error) -> Status,
    expand: Option<Arc<dyn Expand>>,
) -> mpsc::Receiver<Result<common::Event, Status>> {
    let (tx, rx) = mpsc::channel(PAGE as usize);
    tokio::spawn(async move {
        loop {
            let (events, more) = match next_events(&pool, after, &kinds, expand.as_deref()).await {
                Ok(next) => next,
                Err(error) => {
                    let _ = tx.send(Err(unavailable(error))).await;
                    return;
                }
            };
            for event in events {
                after = event.cursor;
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if !more {
                tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    () = tx.closed() => return,
                }
            }
        }
    });
    rx
}

/// The next events after `after`, at most about a page, and whether more
/// may be waiting already.
async fn next_events(
    pool: &PgPool,
    after: i64,
    kinds: &[String],
    expand: Option<&dyn Expand>,
) -> Result<(Vec<common::Event>, bool), sqlx::Error> {
    let span = if expand.is_some() {
        "span"
    } else {
        "1::bigint AS span"
    };
    if let Some(expand) = expand {
        // The follower may have stopped inside a span: the last row at or
        // before its cursor tells.
        let last: Option<EventRow> = sqlx::query_as(&format!(
            "SELECT cursor, {span}, event_id, kind, payload, occurred_at FROM events
             WHERE cursor <= $1 ORDER BY cursor DESC LIMIT 1"
        ))
        .bind(after)
        .fetch_optional(pool)
        .await?;
        if let Some(row) = last
            && row.cursor + row.span - 1 > after
            && (kinds.is_empty() || kinds.contains(&row.kind))
        {
            let events = expand_span(pool, expand, &row, after - row.cursor + 1).await?;
            return Ok((events, true));
        }
    }
    let page: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT cursor, {span}, event_id, kind, payload, occurred_at FROM events
         WHERE cursor > $1 AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
         ORDER BY cursor LIMIT $3"
    ))
    .bind(after)
    .bind(kinds)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    let full = page.len() as i64 == PAGE;
    let mut events = Vec::with_capacity(page.len());
    for row in page {
        if row.span > 1 {
            let expand = expand.ok_or_else(|| {
                sqlx::Error::Protocol("a span row in an outbox read without an expander".into())
            })?;
            // Its first page now; the rest from inside it on the next read.
            events.extend(expand_span(pool, expand, &row, 0).await?);
            return Ok((events, true));
        }
        events.push(common::Event {
            cursor: row.cursor,
            event_id: row.event_id.to_string(),
            kind: row.kind,
            occurred_at: Some(crate::wire::timestamp(row.occurred_at)),
            payload_json: row.payload.to_string(),
        });
    }
    Ok((events, full))
}

/// A page of a span's events from its `skip`-th on.
async fn expand_span(
    pool: &PgPool,
    expand: &dyn Expand,
    row: &EventRow,
    skip: i64,
) -> Result<Vec<common::Event>, sqlx::Error> {
    let limit = PAGE.min(row.span - skip);
    let payloads = expand
        .expand(pool, &row.kind, &row.payload, skip, limit)
        .await?;
    // Fewer would leave the follower stuck inside the span; more would overrun it.
    if payloads.len() as i64 != limit {
        return Err(sqlx::Error::Protocol(format!(
            "span at cursor {} expanded to {} events of {limit}",
            row.cursor,
            payloads.len()
        )));
    }
    Ok(payloads
        .into_iter()
        .zip(skip..)
        .map(|(payload, offset)| common::Event {
            cursor: row.cursor + offset,
            event_id: spanned_id(row.event_id, offset).to_string(),
            kind: row.kind.clone(),
            occurred_at: Some(crate::wire::timestamp(row.occurred_at)),
            payload_json: payload.to_string(),
        })
        .collect())
}
