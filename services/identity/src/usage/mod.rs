//! Usage figures the county reports (its platform counted 2.5 million visits
//! and 442,000 real-name lookups in 2019): what the gateway counts in memory
//! and flushes here in batches, kept by day (China time). This module is the
//! domain — figure names, a parsed batch, a bounded date range —; the store
//! is in [`store`].
//!
//! identity keeps them because it owns the WeChat bindings and the gateway
//! owns nothing durable. Distinct visitors arrive as keyed hashes of openids
//! (the gateway's key, which identity does not have), never as openids.

pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};

use crate::IdentityError;

/// One figure the county reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    /// Messages a citizen sent to the Official Account (a visit).
    ChatMessages,
    /// H5 pages served (a visit).
    PageViews,
    /// 实名查询: a bound citizen read their own or their household's payments.
    RealNameLookups,
    /// 公示查询: a village's masked disclosure list was read.
    DisclosureLookups,
    ReportsStarted,
    ReportsSubmitted,
    /// Distinct openids that visited on the day: counted here from the
    /// hashes, so the gateway may not send it as a counter.
    DistinctVisitors,
}

impl Figure {
    pub const ALL: [Figure; 7] = [
        Figure::ChatMessages,
        Figure::PageViews,
        Figure::RealNameLookups,
        Figure::DisclosureLookups,
        Figure::ReportsStarted,
        Figure::ReportsSubmitted,
        Figure::DistinctVisitors,
    ];

    /// Its name on the wire, in the database and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::ChatMessages => "chat_messages",
            Figure::PageViews => "page_views",
            Figure::RealNameLookups => "real_name_lookups",
            Figure::DisclosureLookups => "disclosure_lookups",
            Figure::ReportsStarted => "reports_started",
            Figure::ReportsSubmitted => "reports_submitted",
            Figure::DistinctVisitors => "distinct_visitors",
        }
    }

    pub fn parse(name: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// A keyed hash of an openid (HMAC-SHA256, 32 bytes): the same visitor
/// hashes alike all day, and nothing here can turn it back into the openid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VisitorHash([u8; 32]);

impl VisitorHash {
    /// From 64 hex digits.
    pub fn parse(hex_text: &str) -> Result<Self, IdentityError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes)
            .map_err(|_| IdentityError::invalid("visitor_hashes", "访客散列应为64位十六进制"))?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A batch may carry days this far back: a gateway that could not reach
/// identity keeps its counts in memory and sends them late. Visitor hashes
/// are kept one day longer than that ([`KEEP_VISITORS_DAYS`]), so a late
/// hash still finds its earlier copy and is not counted twice.
pub const RECORDABLE_DAYS: i64 = 7;

/// How many days of visitor hashes are kept; older ones are pruned.
pub const KEEP_VISITORS_DAYS: i64 = RECORDABLE_DAYS + 1;

/// The most visitor hashes one batch may carry (the gateway sends 10,000).
pub const MAX_VISITORS_PER_BATCH: usize = 50_000;

/// A count larger than this is not a count but a bug or an attack.
const MAX_COUNT: u64 = 1_000_000_000;

/// What one flush of the gateway adds, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBatch {
    /// The gateway's id for the batch; a repeated id is recorded once.
    pub id: uuid::Uuid,
    /// Counters by day and figure, summed when a day names a figure twice.
    pub counters: BTreeMap<(NaiveDate, Figure), i64>,
    pub visitors: BTreeMap<NaiveDate, BTreeSet<VisitorHash>>,
    /// Bounds of the days a batch may name, from `today`.
    earliest: NaiveDate,
    latest: NaiveDate,
}

impl UsageBatch {
    /// An empty batch with id `id`, recorded on `today` (China time).
    pub fn new(id: &str, today: NaiveDate) -> Result<Self, IdentityError> {
        let id = uuid::Uuid::parse_str(id)
            .map_err(|_| IdentityError::invalid("batch_id", "batch_id 应为 UUID"))?;
        Ok(Self {
            id,
            counters: BTreeMap::new(),
            visitors: BTreeMap::new(),
            earliest: today - Duration::days(RECORDABLE_DAYS),
            // The gateway's clock may run a little ahead of ours around midnight.
            latest: today + Duration::days(1),
        })
    }

    /// A day the batch may name: a date, recent, not in the future.
    pub fn day(&self, text: &str) -> Result<NaiveDate, IdentityError> {
        let day = parse_day("day", text)?;
        if day < self.earliest || day > self.latest {
            return Err(IdentityError::invalid(
                "day",
                format!("只能记录最近{RECORDABLE_DAYS}天的用量"),
            ));
        }
        Ok(day)
    }

    /// Adds `count` of the figure named `figure` on `day`.
    pub fn add_count(
        &mut self,
        day: NaiveDate,
        figure: &str,
        count: u64,
    ) -> Result<(), IdentityError> {
        let figure = match Figure::parse(figure) {
            Some(Figure::DistinctVisitors) => {
                return Err(IdentityError::invalid(
                    "figure",
                    "distinct_visitors 由访客散列计得，不能直接记录",
                ));
            }
            Some(figure) => figure,
            None => return Err(IdentityError::invalid("figure", "未知的用量指标")),
        };
        if count > MAX_COUNT {
            return Err(IdentityError::invalid("count", "计数过大"));
        }
        let total = self.counters.entry((day, figure)).or_insert(0);
        // Both at most MAX_COUNT times the few figures a batch can name.
        *total += i64::try_from(count).expect("count is at most MAX_COUNT");
        Ok(())
    }

    /// Adds a visitor of `day`.
    pub fn add_visitor(&mut self, day: NaiveDate, hash: &str) -> Result<(), IdentityError> {
        let hash = VisitorHash::parse(hash)?;
        self.visitors.entry(day).or_default().insert(hash);
        if self.visitor_count() > MAX_VISITORS_PER_BATCH {
            return Err(IdentityError::invalid(
                "visitor_hashes",
                format!("每批最多{MAX_VISITORS_PER_BATCH}个访客散列"),
            ));
        }
        Ok(())
    }

    pub fn visitor_count(&self) -> usize {
        self.visitors.values().map(BTreeSet::len).sum()
    }
}

/// A range of days to read figures for, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The longest range one read may cover: a year, a leap day included.
pub const MAX_RANGE_DAYS: i64 = 366;

impl DayRange {
    pub fn parse(from: &str, to: &str) -> Result<Self, IdentityError> {
        let from = parse_day("from", from)?;
        let to = parse_day("to", to)?;
        if to < from {
            return Err(IdentityError::invalid("to", "结束日期早于开始日期"));
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(IdentityError::invalid(
                "to",
                format!("一次最多查询{MAX_RANGE_DAYS}天"),
            ));
        }
        Ok(Self { from, to })
    }

    /// Every day of the range, oldest first.
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |day| *day <= self.to)
    }
}

/// A day written exactly as `YYYY-MM-DD`: chrono alone would also take
/// `2026-12-7`, and one day must have one spelling.
fn parse_day(field: &str, text: &str) -> Result<NaiveDate, IdentityError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|day| day.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| IdentityError::invalid(field, "日期格式应为 YYYY-MM-DD"))
}

/// One day's figures, every figure present (zero where nothing was counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub figures: BTreeMap<Figure, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b6f1f0e-6f1e-4e0e-9a55-1d2c3b4a5f60";

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).expect("a date")
    }

    fn invalid_field(error: IdentityError) -> String {
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        status.message().to_owned()
    }

    #[test]
    fn figure_names_round_trip_and_unknown_names_are_none() {
        for figure in Figure::ALL {
            assert_eq!(Figure::parse(figure.as_str()), Some(figure));
        }
        assert_eq!(Figure::parse("visits"), None);
        assert_eq!(Figure::parse("CHAT_MESSAGES"), None);
    }

    #[test]
    fn a_batch_sums_a_figure_named_twice_and_dedupes_visitors() {
        let mut batch = UsageBatch::new(ID, today()).expect("batch");
        let day = batch.day("2026-12-07").expect("today");
        batch.add_count(day, "chat_messages", 2).expect("count");
        batch.add_count(day, "chat_messages", 3).expect("count");
        let hash = "ab".repeat(32);
        batch.add_visitor(day, &hash).expect("hash");
        batch.add_visitor(day, &hash).expect("hash");
        assert_eq!(batch.counters[&(day, Figure::ChatMessages)], 5);
        assert_eq!(batch.visitor_count(), 1);
    }

    #[test]
    fn a_batch_refuses_unknown_or_derived_figures_and_bad_hashes() {
        let mut batch = UsageBatch::new(ID, today()).expect("batch");
        let day = today();
        for figure in ["visits", "distinct_visitors", ""] {
            let error = batch.add_count(day, figure, 1).expect_err(figure);
            invalid_field(error);
        }
        assert!(batch.add_count(day, "page_views", MAX_COUNT + 1).is_err());
        for hash in ["o_openid", &"zz".repeat(32), &"ab".repeat(31)] {
            assert!(batch.add_visitor(day, hash).is_err(), "{hash}");
        }
        assert!(UsageBatch::new("batch-1", today()).is_err());
    }

    #[test]
    fn a_batch_names_only_recent_days() {
        let batch = UsageBatch::new(ID, today()).expect("batch");
        assert!(batch.day("2026-11-30").is_ok(), "seven days back");
        assert!(batch.day("2026-12-08").is_ok(), "a clock a little ahead");
        assert!(batch.day("2026-11-29").is_err(), "older than pruned hashes");
        assert!(batch.day("2026-12-09").is_err());
        assert!(batch.day("2026-12-7").is_err());
        assert!(batch.day("2026-02-30").is_err());
    }

    #[test]
    fn a_range_is_ordered_and_at_most_a_year() {
        let range = DayRange::parse("2024-01-01", "2024-12-31").expect("366 days");
        assert_eq!(range.days().count(), 366);
        assert_eq!(
            DayRange::parse("2026-12-07", "2026-12-07")
                .expect("one day")
                .days()
                .count(),
            1
        );
        assert!(DayRange::parse("2024-01-01", "2025-01-01").is_err());
        assert!(DayRange::parse("2026-12-07", "2026-12-06").is_err());
        assert!(DayRange::parse("", "2026-12-06").is_err());
    }
}
