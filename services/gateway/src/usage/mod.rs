//! Usage figures the county reports (visits by day — chat messages and page
//! views —, distinct openids per day, real-name lookups, disclosure lookups,
//! reports started and submitted), counted in memory on the hot path: no
//! write per request. Every count is also a Prometheus counter, and
//! [`flush`] sends the counts to identity, which keeps them.
//!
//! Distinct visitors are kept as keyed hashes of openids (HMAC-SHA256 under
//! a key derived from the AppSecret), never openids themselves.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use huimin_kit::openid::OpenId;

pub mod flush;

/// One figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    ChatMessages,
    PageViews,
    RealNameLookups,
    DisclosureLookups,
    ReportsStarted,
    ReportsSubmitted,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::ChatMessages,
        Metric::PageViews,
        Metric::RealNameLookups,
        Metric::DisclosureLookups,
        Metric::ReportsStarted,
        Metric::ReportsSubmitted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ChatMessages => "chat_messages",
            Metric::PageViews => "page_views",
            Metric::RealNameLookups => "real_name_lookups",
            Metric::DisclosureLookups => "disclosure_lookups",
            Metric::ReportsStarted => "reports_started",
            Metric::ReportsSubmitted => "reports_submitted",
        }
    }
}

/// Distinct openids remembered per interval; beyond it, visitors are still
/// counted as visits but not as distinct (a bound on memory under attack).
const MAX_SEEN: usize = 200_000;

/// What was counted since the last take, by day (`2026-12-02`, China time).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub counters: BTreeMap<(String, Metric), u64>,
    pub seen: BTreeMap<String, BTreeSet<String>>,
}

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.seen.is_empty()
    }
}

#[derive(Clone)]
pub struct Usage {
    key: Arc<[u8]>,
    counts: Arc<Mutex<Counts>>,
}

impl Usage {
    /// `key` keys the hashes of openids (and of the receipt-guess client key).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.into(),
            counts: Arc::default(),
        }
    }

    /// A visit (`ChatMessages` or `PageViews`) by `openid`.
    pub fn visit(&self, openid: &OpenId, metric: Metric) {
        let day = today();
        let hash = self.client_key(openid.as_str());
        self.add(&day, metric, 1);
        if let Ok(mut counts) = self.counts.lock() {
            let total: usize = counts.seen.values().map(BTreeSet::len).sum();
            if total < MAX_SEEN {
                counts.seen.entry(day).or_default().insert(hash);
            }
        }
    }

    pub fn count(&self, metric: Metric, n: u64) {
        self.add(&today(), metric, n);
    }

    fn add(&self, day: &str, metric: Metric, n: u64) {
        metrics::counter!("gateway_usage_total", "figure" => metric.as_str()).increment(n);
        if let Ok(mut counts) = self.counts.lock() {
            *counts.counters.entry((day.to_owned(), metric)).or_insert(0) += n;
        }
    }

    /// Everything counted so far, leaving zero behind (the flush sends it).
    pub fn take(&self) -> Counts {
        self.counts
            .lock()
            .map(|mut counts| std::mem::take(&mut *counts))
            .unwrap_or_default()
    }

    /// A keyed hash of `value` (hex): stable per deployment, not reversible
    /// without the key.
    pub fn client_key(&self, value: &str) -> String {
        client_key(&self.key, value)
    }
}

pub fn client_key(key: &[u8], value: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Today in China Standard Time (UTC+8): the county's day.
pub fn today() -> String {
    day_before(0)
}

/// The county's day `days` before today, `YYYY-MM-DD`.
pub fn day_before(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8) - chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_count_and_distinct_openids_are_hashed() {
        let usage = Usage::new(b"key");
        let a = OpenId::parse("o_a").expect("openid");
        let b = OpenId::parse("o_b").expect("openid");
        usage.visit(&a, Metric::ChatMessages);
        usage.visit(&a, Metric::ChatMessages);
        usage.visit(&b, Metric::PageViews);
        usage.count(Metric::ReportsStarted, 1);
        let taken = usage.take();
        let day = today();
        assert_eq!(taken.counters[&(day.clone(), Metric::ChatMessages)], 2);
        assert_eq!(taken.counters[&(day.clone(), Metric::PageViews)], 1);
        assert_eq!(taken.seen[&day].len(), 2);
        assert!(!taken.seen[&day].contains("o_a"));
        assert!(usage.take().is_empty());
    }
}
