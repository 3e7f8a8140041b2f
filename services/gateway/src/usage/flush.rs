//! The flush: every `HUIMIN_USAGE_FLUSH_SECS` the gateway sends what it
//! counted to identity (`RecordUsage`), which keeps the figures durably; the
//! gateway itself stays stateless.
//!
//! A batch that fails is kept as it is — its id included — and sent again
//! before anything newer is taken. Putting the counts back into [`Usage`]
//! would have been simpler, but a batch whose answer was lost
//! may have been recorded: sent again under a new id it would count twice,
//! under its own id identity recognises it. Memory stays bounded: one
//! flush's batches wait, and what is counted meanwhile is capped as always
//! (`MAX_SEEN`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use huimin_kit::supervise::Task;
use huimin_proto::identity::v1::{RecordUsageRequest, UsageCount, UsageDay};
use tokio::sync::Mutex;
use tonic::Code;

use super::{Counts, Usage};
use crate::peers::IdentityClient;

/// Visitor hashes per `RecordUsage` call: a day's worth of a busy county
/// goes in a few calls, each one well inside a peer call's deadline.
pub const HASHES_PER_BATCH: usize = 10_000;
/// Days back identity records (its `RECORDABLE_DAYS` is 7; one less here, so a clock a little
/// ahead there does not refuse the oldest day): older days are dropped before sending, so
/// one stale day cannot get a whole batch, today's counts with it, refused.
pub const RECORDABLE_DAYS: i64 = 6;

/// Sends the gateway's usage counts to identity.
#[derive(Clone)]
pub struct Flusher {
    usage: Usage,
    identity: IdentityClient,
    every: Duration,
    /// Batches taken and not yet recorded, oldest first.
    waiting: Arc<Mutex<Vec<RecordUsageRequest>>>,
}

impl Flusher {
    pub fn new(usage: Usage, identity: IdentityClient, every: Duration) -> Self {
        Self {
            usage,
            identity,
            every,
            waiting: Arc::default(),
        }
    }

    /// Sends what waits, or else what was counted since the last flush.
    /// Stops at the first batch identity did not take; it waits for the
    /// next flush.
    pub async fn flush(&self) -> Result<(), tonic::Status> {
        let mut waiting = self.waiting.lock().await;
        if waiting.is_empty() {
            waiting.extend(batches(self.usage.take()));
        }
        let earliest = super::day_before(RECORDABLE_DAYS);
        while let Some(mut batch) = waiting.first().cloned() {
            if drop_days_before(&mut batch, &earliest) {
                metrics::counter!("gateway_usage_days_dropped_total").increment(1);
                tracing::warn!(batch = %batch.batch_id, "usage counts older than identity records were dropped");
            }
            if batch.days.is_empty() {
                waiting.remove(0);
                continue;
            }
            let sent = self
                .identity
                .call(|mut identity| {
                    let batch = batch.clone();
                    async move { identity.record_usage(batch).await }
                })
                .await;
            match sent {
                Ok(_) => {}
                // Refused as it is, it would be refused forever (days too
                // old after a long outage, say): dropped, and said so.
                Err(status) if status.code() == Code::InvalidArgument => {
                    metrics::counter!("gateway_usage_batches_dropped_total").increment(1);
                    tracing::warn!(batch = %batch.batch_id, reason = status.message(), "usage batch refused by identity; dropped");
                }
                Err(status) => return Err(status),
            }
            waiting.remove(0);
        }
        Ok(())
    }

    /// The supervised task: a flush every interval, and one more on
    /// shutdown so a stopping replica loses nothing it counted (when
    /// identity runs in the same process it may be draining already, and
    /// that last flush can fail: up to one interval of counts is lost).
    pub fn task(&self) -> Task {
        let flusher = self.clone();
        Task::new("gateway.flush_usage", move |stop| {
            let flusher = flusher.clone();
            async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => {
                            if let Err(status) = flusher.flush().await {
                                tracing::warn!(code = ?status.code(), "last usage flush failed; its counts are lost");
                            }
                            return Ok(());
                        }
                        () = tokio::time::sleep(flusher.every) => {}
                    }
                    if let Err(status) = flusher.flush().await {
                        tracing::warn!(code = ?status.code(), "usage flush failed; kept for the next one");
                    }
                }
            }
        })
    }
}

/// Removes from `batch` the days before `earliest` (both `YYYY-MM-DD`, so they compare
/// as text); whether any was removed.
pub fn drop_days_before(batch: &mut RecordUsageRequest, earliest: &str) -> bool {
    let before = batch.days.len();
    batch.days.retain(|day| day.day.as_str() >= earliest);
    batch.days.len() != before
}

/// `counts` as `RecordUsage` requests, each with a fresh batch id: the
/// counters and the first hashes in the first, further hashes in further
/// ones, [`HASHES_PER_BATCH`] at most each. None when nothing was counted.
pub fn batches(counts: Counts) -> Vec<RecordUsageRequest> {
    if counts.is_empty() {
        return Vec::new();
    }
    let mut first: BTreeMap<String, UsageDay> = BTreeMap::new();
    for ((day, metric), count) in counts.counters {
        day_of(&mut first, &day).counts.push(UsageCount {
            figure: metric.as_str().to_owned(),
            count,
        });
    }
    let mut batches = vec![first];
    let mut room = HASHES_PER_BATCH;
    for (day, hashes) in counts.seen {
        for hash in hashes {
            if room == 0 {
                batches.push(BTreeMap::new());
                room = HASHES_PER_BATCH;
            }
            let batch = batches.last_mut().expect("batches starts with one");
            day_of(batch, &day).visitor_hashes.push(hash);
            room -= 1;
        }
    }
    batches
        .into_iter()
        .map(|days| RecordUsageRequest {
            batch_id: uuid::Uuid::new_v4().to_string(),
            days: days.into_values().collect(),
        })
        .collect()
}

fn day_of<'a>(days: &'a mut BTreeMap<String, UsageDay>, day: &str) -> &'a mut UsageDay {
    days.entry(day.to_owned()).or_insert_with(|| UsageDay {
        day: day.to_owned(),
        ..UsageDay::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_identity_would_refuse_are_dropped_and_the_rest_kept() {
        let day = |day: &str| UsageDay {
            day: day.to_owned(),
            counts: vec![UsageCount {
                figure: "chat_messages".to_owned(),
                count: 1,
            }],
            visitor_hashes: Vec::new(),
        };
        let mut batch = RecordUsageRequest {
            batch_id: "b".to_owned(),
            days: vec![day("2026-11-20"), day("2026-12-01"), day("2026-12-07")],
        };
        assert!(drop_days_before(&mut batch, "2026-12-01"));
        let kept: Vec<&str> = batch.days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(kept, ["2026-12-01", "2026-12-07"]);
        assert!(!drop_days_before(&mut batch, "2026-12-01"));
    }

    use super::*;
    use crate::usage::Metric;

    #[test]
    fn nothing_counted_is_no_batch() {
        assert!(batches(Counts::default()).is_empty());
    }

    #[test]
    fn counters_go_first_and_hashes_are_split_with_fresh_ids() {
        let mut counts = Counts::default();
        counts
            .counters
            .insert(("2026-12-07".to_owned(), Metric::ChatMessages), 5);
        counts
            .counters
            .insert(("2026-12-06".to_owned(), Metric::PageViews), 2);
        let many = (0..HASHES_PER_BATCH + 1).map(|i| format!("{i:064x}"));
        counts.seen.insert("2026-12-07".to_owned(), many.collect());
        let sent = batches(counts);
        assert_eq!(sent.len(), 2);
        assert_ne!(sent[0].batch_id, sent[1].batch_id);
        let days: Vec<&str> = sent[0].days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(days, ["2026-12-06", "2026-12-07"]);
        assert_eq!(sent[0].days[1].counts[0].figure, "chat_messages");
        assert_eq!(sent[0].days[1].counts[0].count, 5);
        assert_eq!(sent[0].days[1].visitor_hashes.len(), HASHES_PER_BATCH);
        assert_eq!(sent[1].days.len(), 1);
        assert!(sent[1].days[0].counts.is_empty());
        assert_eq!(sent[1].days[0].visitor_hashes.len(), 1);
    }
}
