//! The incremental runs, in the background: one per roll as it lands (from `check_queue`,
//! written in the roll's own transaction, so nothing is lost to a crash), and one after
//! every facts import identity reports through its stream.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::run::Scope;
use crate::{Ledger, LedgerError};

/// Who background runs are recorded as.
const WORKER: &str = "ledger.checks";

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

    /// Brings the facts mirror up to date and runs the rules over the persons whose facts
    /// changed (all of them, when too many did).
    pub async fn sync_facts_and_check(&self) -> Result<i64, LedgerError> {
        let synced = self.sync_facts().await?;
        if synced.facts == 0 {
            return Ok(0);
        }
        let scope = match synced.persons {
            Some(persons) => Scope::Persons(persons),
            None => Scope::Full,
        };
        self.run_checks(scope, WORKER, |_| {}).await?;
        Ok(synced.facts)
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
