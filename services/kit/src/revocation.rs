//! Revoked tokens, honoured by every process within a poll interval: the
//! list of revoked token ids (`jti`) identity keeps in its database and
//! publishes to Redis is read by each process and handed to its
//! [`TokenVerifier`]. Redis unreachable: the last list read stays in force
//! (a revocation made meanwhile waits for Redis, and for identity's next
//! republication if Redis lost it).

use std::time::Duration;

use crate::{auth::TokenVerifier, cache::Cache, supervise::Task};

/// How often a process reads the list unless `HUIMIN_REVOCATION_POLL_SECS` says.
pub const DEFAULT_POLL: Duration = Duration::from_secs(20);

/// The supervised task that keeps `verifier`'s revoked set current.
pub fn task(verifier: TokenVerifier, cache: Cache, every: Duration) -> Task {
    Task::new("auth.revocations", move |stop| {
        let verifier = verifier.clone();
        let cache = cache.clone();
        async move {
            loop {
                if let Some(revoked) = cache.revoked_tokens().await {
                    metrics::gauge!("revoked_tokens").set(revoked.len() as f64);
                    verifier.set_revoked(revoked);
                }
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(every) => {}
                }
            }
        }
    })
}
