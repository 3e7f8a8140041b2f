//! The transactional outbox every event-producing service shares: events are
//! written in the transaction of the change they describe (into the
//! service's own `events` table) and served in cursor order by
//! `WatchEvents`. The table has one shape, [`EVENTS_SQL`], which each producer
//! applies as a migration of its own (a link to `kit/sql/outbox_events.sql`);
//! the other side, a follower of a feed, is [`crate::follower`].
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

/// The one definition of a producer's `events` table (see the file's comments).
pub const EVENTS_SQL: &str = include_str!("../sql/outbox_events.sql");

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
    /// Set on a span row (even a span of one), NULL on an ordinary event.
    span: Option<i64>,
    event_id: uuid::Uuid,
    kind: String,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
}

/// What `WatchEvents` returns.
pub type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<common::Event, Status>> + Send>>;

/// The one `WatchEvents` handler: streams events after the request's cursor, then
/// new ones as they commit, until the client goes away. A database failure ends the
/// stream with the status [`CoreError`](crate::error::CoreError) gives it.
pub fn watch(pool: PgPool, request: common::WatchEventsRequest) -> EventStream {
    stream(pool, request, None)
}

/// [`watch`] for an outbox with span rows, which `expand` builds the events of.
pub fn watch_expanding(
    pool: PgPool,
    request: common::WatchEventsRequest,
    expand: Arc<dyn Expand>,
) -> EventStream {
    stream(pool, request, Some(expand))
}

fn stream(
    pool: PgPool,
    request: common::WatchEventsRequest,
    expand: Option<Arc<dyn Expand>>,
) -> EventStream {
    let rx = follow(pool, request.after_cursor.max(0), request.kinds, expand);
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn follow(
    pool: PgPool,
    mut after: i64,
    kinds: Vec<String>,
    expand: Option<Arc<dyn Expand>>,
) -> mpsc::Receiver<Result<common::Event, Status>> {
    let (tx, rx) = mpsc::channel(PAGE as usize);
    tokio::spawn(async move {
        // A follower may start inside a span (it resumes from a cursor it
        // was given); later it is inside one only after reading part of it.
        let mut maybe_inside = expand.is_some();
        loop {
            let next = next_events(&pool, after, &kinds, expand.as_deref(), maybe_inside).await;
            let page = match next {
                Ok(page) => page,
                Err(error) => {
                    let status = crate::error::CoreError::from(error).into();
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            maybe_inside = page.inside_span;
            for event in page.events {
                after = event.cursor;
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if !page.more {
                tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    () = tx.closed() => return,
                }
            }
        }
    });
    rx
}

/// What one read of the outbox gave.
struct Page {
    events: Vec<common::Event>,
    /// More may be waiting already: read again without pausing.
    more: bool,
    /// The last event is inside a span, not at its end.
    inside_span: bool,
}

/// The next events after `after`, at most about a page.
async fn next_events(
    pool: &PgPool,
    after: i64,
    kinds: &[String],
    expand: Option<&dyn Expand>,
    maybe_inside: bool,
) -> Result<Page, sqlx::Error> {
    if let Some(expand) = expand.filter(|_| maybe_inside) {
        // The last row at or before the cursor tells whether it is inside a span.
        let last: Option<EventRow> = sqlx::query_as(
            "SELECT cursor, span, event_id, kind, payload, occurred_at FROM events
             WHERE cursor <= $1 ORDER BY cursor DESC LIMIT 1",
        )
        .bind(after)
        .fetch_optional(pool)
        .await?;
        if let Some(row) = last
            && let Some(length) = row.span
            && row.cursor + length - 1 > after
            && (kinds.is_empty() || kinds.contains(&row.kind))
        {
            return expand_span(pool, expand, &row, length, after - row.cursor + 1).await;
        }
    }
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT cursor, span, event_id, kind, payload, occurred_at FROM events
         WHERE cursor > $1 AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
         ORDER BY cursor LIMIT $3",
    )
    .bind(after)
    .bind(kinds)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    let full = rows.len() as i64 == PAGE;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(length) = row.span {
            let expand = expand.ok_or_else(|| {
                sqlx::Error::Protocol("a span row in an outbox read without an expander".into())
            })?;
            // Its first page now; the rest from inside it on the next read.
            let mut page = expand_span(pool, expand, &row, length, 0).await?;
            events.append(&mut page.events);
            page.events = events;
            return Ok(page);
        }
        events.push(event(
            &row,
            row.cursor,
            row.event_id,
            row.payload.to_string(),
        ));
    }
    Ok(Page {
        events,
        more: full,
        inside_span: false,
    })
}

fn event(row: &EventRow, cursor: i64, id: uuid::Uuid, payload_json: String) -> common::Event {
    common::Event {
        cursor,
        event_id: id.to_string(),
        kind: row.kind.clone(),
        occurred_at: Some(crate::wire::timestamp(row.occurred_at)),
        payload_json,
    }
}

/// A page of the events of a span `length` long, from its `skip`-th on.
async fn expand_span(
    pool: &PgPool,
    expand: &dyn Expand,
    row: &EventRow,
    length: i64,
    skip: i64,
) -> Result<Page, sqlx::Error> {
    let limit = PAGE.min(length - skip);
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
    let events = payloads
        .into_iter()
        .zip(skip..)
        .map(|(payload, offset)| {
            event(
                row,
                row.cursor + offset,
                spanned_id(row.event_id, offset),
                payload.to_string(),
            )
        })
        .collect();
    Ok(Page {
        events,
        more: true,
        inside_span: skip + limit < length,
    })
}
