//! Following another service's `WatchEvents` feed (the reading side of [`crate::outbox`]):
//! the cursor is stored in the follower's own schema, a failed stream is reopened with
//! backoff, an event whose id was handled already is dropped, and each event is handed to
//! a [`Handler`] inside the transaction that records its id and the new cursor — so what
//! the handler writes to the database happens exactly once, and the follower resumes
//! where it stopped. Effects outside the database (a message sent) happen at least once.
//!
//! The follower's schema needs [`CURSORS_SQL`], applied as a migration of its own (a link
//! to `kit/sql/follower_cursors.sql`).

use std::{future::Future, pin::Pin, time::Duration};

use futures::{StreamExt as _, future::BoxFuture};
use huimin_proto::common::v1::{Event, WatchEventsRequest};
use sqlx::{PgConnection, PgPool};
use tonic::Status;

/// The tables a follower keeps in its own schema (see the file's comments).
pub const CURSORS_SQL: &str = include_str!("../sql/follower_cursors.sql");

/// How long handled event ids are kept for dropping repeats. A repeat comes from a
/// reconnect (minutes) or a producer resending; a week is far beyond either.
const KEEP_HANDLED: &str = "7 days";

/// An open feed: what a producer's `WatchEvents` streams.
pub type EventFeed = Pin<Box<dyn futures::Stream<Item = Result<Event, Status>> + Send>>;

/// Opens the feed after a cursor: a call to the producer's `WatchEvents`, with the
/// follower's token and the kinds it wants.
pub trait Feed: Send + Sync + 'static {
    fn open(&self, request: WatchEventsRequest) -> BoxFuture<'static, Result<EventFeed, Status>>;
}

impl<F, Fut> Feed for F
where
    F: Fn(WatchEventsRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<EventFeed, Status>> + Send + 'static,
{
    fn open(&self, request: WatchEventsRequest) -> BoxFuture<'static, Result<EventFeed, Status>> {
        Box::pin(self(request))
    }
}

/// What a follower does with one event, in the transaction that records it as handled.
/// An error rolls that back: the event is handed over again after the reconnect.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Waits between attempts to reopen a failed feed: `first`, doubling up to `max`, and
/// back to `first` once an event has been handled.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// One feed followed by one handler.
pub struct Follower<F, H> {
    /// The feed's name in `cursors`, e.g. `registry`.
    name: String,
    /// The follower's own pool (its schema holds `cursors`).
    pool: PgPool,
    kinds: Vec<String>,
    backoff: Backoff,
    feed: F,
    handler: H,
}

/// What became of one event.
#[derive(Debug, PartialEq, Eq)]
enum Taken {
    Handled,
    /// Its id was handled before: dropped, the cursor moved past it.
    Repeat,
}

impl<F: Feed, H: Handler> Follower<F, H> {
    pub fn new(name: impl Into<String>, pool: PgPool, feed: F, handler: H) -> Self {
        Self {
            name: name.into(),
            pool,
            kinds: Vec::new(),
            backoff: Backoff::default(),
            feed,
            handler,
        }
    }

    /// Follows only these kinds of event (all when empty).
    pub fn kinds(mut self, kinds: Vec<String>) -> Self {
        self.kinds = kinds;
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The stored cursor: the last event handled, 0 before the first.
    pub async fn cursor(&self) -> Result<i64, sqlx::Error> {
        let cursor: Option<i64> = sqlx::query_scalar("SELECT cursor FROM cursors WHERE feed = $1")
            .bind(&self.name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(cursor.unwrap_or(0))
    }

    /// Follows the feed until `shutdown` completes; an event being handled then is rolled
    /// back and handed over again by the next run. Failures (the producer down, the stream cut, the handler or the
    /// database failing) are logged and retried after the backoff, from the stored cursor.
    #[tracing::instrument(skip_all, fields(feed = %self.name))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        if let Err(error) = self.prune().await {
            tracing::warn!(%error, "pruning handled event ids failed");
        }
        let mut delay = self.backoff.first;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                progressed = self.follow_once() => {
                    if progressed {
                        delay = self.backoff.first;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.backoff.max);
        }
    }

    /// Opens the feed at the stored cursor and handles events until it fails; whether
    /// any event was taken. Dropped at any await point on shutdown, which is safe:
    /// an event's transaction either committed or is rolled back.
    async fn follow_once(&self) -> bool {
        let after = match self.cursor().await {
            Ok(after) => after,
            Err(error) => {
                tracing::warn!(%error, "reading the stored cursor failed");
                return false;
            }
        };
        let request = WatchEventsRequest {
            after_cursor: after,
            kinds: self.kinds.clone(),
        };
        let mut events = match self.feed.open(request).await {
            Ok(events) => events,
            Err(status) => {
                tracing::warn!(code = ?status.code(), "opening the feed failed");
                return false;
            }
        };
        tracing::info!(after, "following");
        let mut progressed = false;
        while let Some(next) = events.next().await {
            let event = match next {
                Ok(event) => event,
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "the feed failed");
                    return progressed;
                }
            };
            match self.take(&event).await {
                Ok(taken) => {
                    progressed = true;
                    tracing::debug!(cursor = event.cursor, kind = %event.kind, ?taken, "event taken");
                }
                Err(error) => {
                    tracing::warn!(
                        cursor = event.cursor,
                        kind = %event.kind,
                        error = format!("{error:#}"),
                        "handling an event failed"
                    );
                    return progressed;
                }
            }
        }
        tracing::info!("the feed ended");
        progressed
    }

    /// Handles one event unless its id was handled before, and stores its cursor, in
    /// one transaction.
    async fn take(&self, event: &Event) -> anyhow::Result<Taken> {
        let mut tx = self.pool.begin().await?;
        let taken = match uuid::Uuid::parse_str(&event.event_id) {
            Ok(id) => {
                let fresh = sqlx::query(
                    "INSERT INTO handled_events (feed, event_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&self.name)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if fresh {
                    self.handler.handle(&mut tx, event).await?;
                    Taken::Handled
                } else {
                    Taken::Repeat
                }
            }
            // Every producer writes uuids; an event without one cannot be deduplicated,
            // and refusing it would stop the feed for good.
            Err(_) => {
                tracing::error!(
                    cursor = event.cursor,
                    "event without a valid id; handled without deduplication"
                );
                self.handler.handle(&mut tx, event).await?;
                Taken::Handled
            }
        };
        // GREATEST: a feed never moves a follower back.
        sqlx::query(
            "INSERT INTO cursors (feed, cursor) VALUES ($1, $2)
             ON CONFLICT (feed) DO UPDATE
             SET cursor = GREATEST(cursors.cursor, EXCLUDED.cursor), updated_at = now()",
        )
        .bind(&self.name)
        .bind(event.cursor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// Forgets handled ids older than the retention period.
    async fn prune(&self) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "DELETE FROM handled_events WHERE feed = $1 AND handled_at < now() - interval '{KEEP_HANDLED}'"
        ))
        .bind(&self.name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
