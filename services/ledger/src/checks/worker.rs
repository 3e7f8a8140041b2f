//! The incremental runs, in the background: one per roll as it lands (from `check_queue`,
//! written in the roll's own transaction, so nothing is lost to a crash), and one after
//! every facts import identity reports through its stream.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::run::Scope;
use crate::{Ledger, LedgerError};

/// Who background runs are recorded as.
const WORKER: &str = "ledger.checks";

/// Beyond this many persons waiting, one full run is cheaper than listing them.
const PERSONS_PER_RUN: i64 = 100_000;

impl Ledger {
    /// Runs the queued rolls' checks, oldest first; returns how many ran.
    pub async fn drain_check_queue(&self) -> Result<usize, LedgerError> {
        let mut ran = 0;
        loop {
            let next: Option<i64> =
                sqlx::query_scalar("SELECT roll_id FROM check_queue ORDER BY roll_id LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(roll_id) = next else {
                return Ok(ran);
            };
            self.run_checks(Scope::Roll(roll_id), WORKER, |_| {})
                .await?;
            sqlx::query("DELETE FROM check_queue WHERE roll_id = $1")
                .bind(roll_id)
                .execute(&self.pool)
                .await?;
            ran += 1;
        }
    }

    /// Brings the facts mirror up to date, then runs the rules over the persons whose facts
    /// changed (queued durably with the facts; all of them at once, as a full run, when
    /// more than [`PERSONS_PER_RUN`] wait). Returns how many facts came.
    pub async fn sync_facts_and_check(&self) -> Result<i64, LedgerError> {
        let synced = self.sync_facts().await?;
        loop {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM facts_check_queue")
                .fetch_one(&self.pool)
                .await?;
            if waiting == 0 {
                return Ok(synced.facts);
            }
            if waiting > PERSONS_PER_RUN {
                // A full run empties the queue itself.
                self.run_checks(Scope::Full, WORKER, |_| {}).await?;
                continue;
            }
            let taken: Vec<(Vec<u8>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                "SELECT person_key, queued_at FROM facts_check_queue ORDER BY queued_at LIMIT $1",
            )
            .bind(PERSONS_PER_RUN)
            .fetch_all(&self.pool)
            .await?;
            let keys: Vec<Vec<u8>> = taken.iter().map(|(k, _)| k.clone()).collect();
            let times: Vec<chrono::DateTime<chrono::Utc>> = taken.iter().map(|(_, t)| *t).collect();
            self.run_checks(Scope::Persons(keys.clone()), WORKER, |_| {})
                .await?;
            // Only as queued when taken: a person queued again meanwhile waits for the next run.
            sqlx::query(
                "DELETE FROM facts_check_queue q USING unnest($1::bytea[], $2::timestamptz[]) AS t(k, at)
                 WHERE q.person_key = t.k AND q.queued_at = t.at",
            )
            .bind(&keys)
            .bind(&times)
            .execute(&mut *self.pool.acquire().await?)
            .await?;
        }
    }

    /// The roll queue, woken by every import and every `poll`; stops with `stop`.
    pub async fn run_queued_checks_until(&self, stop: CancellationToken, poll: Duration) {
        loop {
            if let Err(error) = self.drain_check_queue().await {
                tracing::warn!(%error, "queued cross-checks failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.checks_wakeup.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Follows identity's facts every `poll`; stops with `stop`.
    pub async fn follow_facts_until(&self, stop: CancellationToken, poll: Duration) {
        loop {
            if let Err(error) = self.sync_facts_and_check().await {
                tracing::warn!(%error, "following identity's facts failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}
