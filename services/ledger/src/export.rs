//! The provincial export: payments in id order, in batches, resumable from
//! the last batch's cursor. Payments are immutable and their ids are handed
//! out in commit order (imports hold the writers' lock), so resuming after a
//! dropped connection loses and repeats nothing.
//!
//! Read from the replica when there is one: a streaming replica shows a prefix
//! of the primary's commits, so with ids in commit order a batch read there is
//! at most missing the newest payments, which the next resume (or the event
//! feed) brings; it never skips one.

use crate::{Ledger, LedgerError, lookup::PaymentView};
use chrono::NaiveDate;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub period_from: Option<NaiveDate>,
    pub period_to: Option<NaiveDate>,
    pub program: Option<String>,
    pub town: Option<String>,
}

/// Parses an export bound: `2025`, `2025-07` or `2025-Q3`, as the first
/// (`end = false`) or last (`end = true`) day it covers.
pub fn parse_bound(text: &str, end: bool) -> Result<Option<NaiveDate>, LedgerError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || LedgerError::invalid("period", "期间应为 2025、2025-07 或 2025-Q3");
    let (year, first_month, months) = match (text.get(..4), text.get(4..)) {
        (Some(y), Some("")) => (y, 1, 12),
        (Some(y), Some(rest)) if rest.starts_with("-Q") => {
            let q: u32 = rest[2..].parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            (y, (q - 1) * 3 + 1, 3)
        }
        (Some(y), Some(rest)) if rest.starts_with('-') => {
            (y, rest[1..].parse().map_err(|_| bad())?, 1)
        }
        _ => return Err(bad()),
    };
    let year: i32 = year.parse().map_err(|_| bad())?;
    let start = NaiveDate::from_ymd_opt(year, first_month, 1).ok_or_else(bad)?;
    if !end {
        return Ok(Some(start));
    }
    let next = start
        .checked_add_months(chrono::Months::new(months))
        .ok_or_else(bad)?;
    Ok(next.pred_opt())
}

impl Ledger {
    /// One batch of the export after `cursor`.
    pub async fn export_batch(
        &self,
        filter: &ExportFilter,
        cursor: i64,
        size: i64,
    ) -> Result<Vec<PaymentView>, LedgerError> {
        Ok(sqlx::query_as(
            "SELECT p.id, encode(p.person_key, 'hex') AS person_key, p.name_masked, p.id_masked, p.household_code, p.village_code,
                    p.program_code, '' AS program_name, p.period, p.period_start, p.amount_fen, p.kind, p.reverses AS related_id,
                    p.bank_masked, p.roll_id, p.posted_at
             FROM payments p
             WHERE p.id > $1
               AND ($2::date IS NULL OR p.period_start >= $2) AND ($3::date IS NULL OR p.period_start <= $3)
               AND ($4::text IS NULL OR p.program_code = $4) AND ($5::text IS NULL OR p.town_code = $5)
             ORDER BY p.id LIMIT $6",
        )
        .bind(cursor)
        .bind(filter.period_from)
        .bind(filter.period_to)
        .bind(filter.program.as_deref())
        .bind(filter.town.as_deref())
        .bind(size)
        .fetch_all(&self.reader)
        .await?)
    }
}
