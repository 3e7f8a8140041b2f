//! Lookups: a person's or household's payments (real-name, authorized), a
//! village's masked disclosure list (public) and totals (public). Payment
//! pages and disclosure pages are cached under a generation counter that
//! every import moves on.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use huimin_kit::{auth::Caller, pii::PersonKey};
use serde::{Deserialize, Serialize};

use crate::{
    Ledger, LedgerError,
    cache_keys::{CACHE_TTL, PAYMENTS_GENERATION},
    domain::EntryKind,
};

const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

/// One payment as a lookup shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PaymentView {
    pub id: i64,
    /// Hex, as the API shows it (kept as text in the cache, too).
    pub person_key: String,
    pub name_masked: String,
    pub id_masked: String,
    pub household_code: String,
    pub village_code: String,
    pub program_code: String,
    pub program_name: String,
    pub period: String,
    /// The period's first day: pages are ordered by it, newest first.
    pub period_start: NaiveDate,
    pub amount_fen: i64,
    pub kind: EntryKind,
    /// The reversal of a payment, or the payment a reversal cancels.
    pub related_id: Option<i64>,
    pub bank_masked: String,
    pub roll_id: i64,
    pub posted_at: DateTime<Utc>,
}

/// A page of payments and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentsPage {
    pub payments: Vec<PaymentView>,
    pub next_page_token: String,
}

/// A masked disclosure (公示) page of one village, program and period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    pub program_name: String,
    pub entries: Vec<DisclosureEntry>,
    pub next_page_token: String,
    pub total_persons: u64,
    pub total_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DisclosureEntry {
    pub id: i64,
    pub name_masked: String,
    pub id_masked: String,
    pub household_code: String,
    pub amount_fen: i64,
}

/// A row of totals.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Total {
    pub key: String,
    pub payments: i64,
    pub persons: i64,
    pub amount_fen: i64,
}

/// Whose payments to list.
#[derive(Debug, Clone)]
pub enum Subject {
    Person(PersonKey),
    Household(String),
}

/// The id a page continues from: the last one shown (kind "p"), or `none` first.
fn decode_token(token: &str, none: i64) -> Result<i64, LedgerError> {
    match huimin_kit::page::decode("p", token) {
        Some(id) => Ok(id.unwrap_or(none)),
        None => Err(LedgerError::invalid("page_token", "分页标记无效")),
    }
}

fn encode_token(last_id: i64) -> String {
    huimin_kit::page::encode("p", last_id)
}

/// Bits of a payment position that hold the id (ids stay far below 2^40).
const POSITION_ID_BITS: u32 = 40;

/// The 1970-01-01 a period's start is counted from in a position.
fn position_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 exists")
}

/// Where a person's or household's page continues (kind "q"): after the last payment
/// shown, newest period first, then newest id. One number: the period's start in days
/// since 1970 above the id's 40 bits.
fn encode_position(start: NaiveDate, id: i64) -> String {
    let days = (start - position_epoch()).num_days().max(0);
    huimin_kit::page::encode(
        "q",
        (days << POSITION_ID_BITS) | (id & ((1 << POSITION_ID_BITS) - 1)),
    )
}

/// The position a page continues after; `None` for the first page.
fn decode_position(token: &str) -> Result<Option<(NaiveDate, i64)>, LedgerError> {
    let invalid = || LedgerError::invalid("page_token", "分页标记无效");
    match huimin_kit::page::decode("q", token) {
        Some(None) => Ok(None),
        Some(Some(value)) if value >= 0 => {
            let start = position_epoch()
                .checked_add_days(chrono::Days::new((value >> POSITION_ID_BITS) as u64))
                .ok_or_else(invalid)?;
            Ok(Some((start, value & ((1 << POSITION_ID_BITS) - 1))))
        }
        _ => Err(invalid()),
    }
}

/// Trims the extra row fetched past the page and returns the token of the
/// next page, empty when there is none.
fn next_token<T>(rows: &mut Vec<T>, size: u32, token: impl Fn(&T) -> String) -> String {
    if rows.len() <= size as usize {
        return String::new();
    }
    rows.truncate(size as usize);
    rows.last().map(token).unwrap_or_default()
}

pub fn page_size(requested: u32) -> u32 {
    huimin_kit::page::size(requested, DEFAULT_PAGE, MAX_PAGE)
}

const PAYMENT_SELECT: &str =
    "SELECT p.id, encode(p.person_key, 'hex') AS person_key, p.name_masked, p.id_masked, p.household_code, p.village_code,
        p.program_code, g.name AS program_name, p.period, p.period_start, p.amount_fen, p.kind,
        COALESCE(p.reverses, (SELECT r.id FROM payments r WHERE r.reverses = p.id)) AS related_id,
        p.bank_masked, p.roll_id, p.posted_at
    FROM payments p JOIN programs g ON g.code = p.program_code";

impl Ledger {
    /// A page of payments, newest period first; served from the cache when it can be.
    #[tracing::instrument(level = "debug", skip_all)]
    /// `department` limits the page to that department's programs (what a
    /// department officer may see).
    pub async fn payments(
        &self,
        subject: &Subject,
        page_token: &str,
        size: u32,
        department: Option<&str>,
    ) -> Result<Arc<PaymentsPage>, LedgerError> {
        let after = decode_position(page_token)?;
        let size = page_size(size);
        let who = match subject {
            Subject::Person(key) => format!("person:{}", key.to_hex()),
            Subject::Household(code) => format!("household:{code}"),
        };
        let from = after.map_or_else(|| "first".to_owned(), |(start, id)| format!("{start}/{id}"));
        let key = format!("ledger:{who}:{from}:{size}:{}", department.unwrap_or("*"));
        let compute = async {
            let filter = match subject {
                Subject::Person(_) => "p.person_key = $1",
                Subject::Household(_) => "p.household_code = $1",
            };
            // Newest period first, so a citizen's first page is last month's, whatever order
            // the rolls were imported in (a back-filled history after newer months, a late
            // roll); the person and household indexes find the rows, the sort is per subject.
            let sql = format!(
                "{PAYMENT_SELECT} WHERE {filter}
                   AND ($2::date IS NULL OR (p.period_start, p.id) < ($2::date, $5::bigint))
                   AND ($4::text IS NULL OR g.department = $4)
                 ORDER BY p.period_start DESC, p.id DESC LIMIT $3"
            );
            let query = sqlx::query_as::<_, PaymentView>(&sql);
            let query = match subject {
                Subject::Person(key) => query.bind(key.as_bytes().to_vec()),
                Subject::Household(code) => query.bind(code.clone()),
            };
            // One row more than the page tells whether another page follows.
            let mut payments = query
                .bind(after.map(|(start, _)| start))
                .bind(i64::from(size) + 1)
                .bind(department)
                .bind(after.map_or(i64::MAX, |(_, id)| id))
                .fetch_all(&self.pool)
                .await?;
            let next_page_token = next_token(&mut payments, size, |last| {
                encode_position(last.period_start, last.id)
            });
            Ok(PaymentsPage {
                payments,
                next_page_token,
            })
        };
        self.cache
            .current_or(PAYMENTS_GENERATION, &key, CACHE_TTL, compute)
            .await
    }

    /// A village's masked disclosure list for one program and period.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn disclosure(
        &self,
        village: &str,
        program: &str,
        period: &str,
        page_token: &str,
        size: u32,
    ) -> Result<Arc<Disclosure>, LedgerError> {
        if village.len() != 12 || !village.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LedgerError::invalid("village_code", "村代码应为12位数字"));
        }
        let after = decode_token(page_token, 0)?;
        let size = page_size(size);
        let programs = self.programs().await?;
        let program = programs
            .get(program)
            .ok_or(LedgerError::not_found("项目不存在"))?;
        let period = crate::domain::Period::parse(program.period_kind, period)
            .map_err(|e| LedgerError::invalid("period", e.message_zh()))?;
        let key = format!(
            "ledger:disclosure:{village}:{}:{}:{after}:{size}",
            program.code,
            period.text()
        );
        let compute = async {
            // Live payments only: a reversed payment and its reversal both drop out.
            let live =
            "p.village_code = $1 AND p.program_code = $2 AND p.period = $3 AND p.kind = 'payment'
                    AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)";
            let mut entries: Vec<DisclosureEntry> = sqlx::query_as(&format!(
            "SELECT p.id, p.name_masked, p.id_masked, p.household_code, p.amount_fen FROM payments p
             WHERE {live} AND p.id > $4 ORDER BY p.id LIMIT $5"
        ))
            .bind(village)
            .bind(&program.code)
            .bind(period.text())
            .bind(after)
            .bind(i64::from(size) + 1)
            .fetch_all(&self.pool)
            .await?;
            let (total_persons, total_fen): (i64, Option<i64>) = sqlx::query_as(&format!(
            "SELECT count(DISTINCT p.person_key), sum(p.amount_fen)::bigint FROM payments p WHERE {live}"
        ))
        .bind(village)
        .bind(&program.code)
        .bind(period.text())
        .fetch_one(&self.pool)
        .await?;
            let next_page_token = next_token(&mut entries, size, |e| encode_token(e.id));
            Ok(Disclosure {
                program_name: program.name.clone(),
                entries,
                next_page_token,
                total_persons: u64::try_from(total_persons).unwrap_or(0),
                total_fen: total_fen.unwrap_or(0),
            })
        };
        self.cache
            .current_or(PAYMENTS_GENERATION, &key, CACHE_TTL, compute)
            .await
    }

    /// Totals of live money (payments net of reversals) grouped one way.
    pub async fn totals(
        &self,
        group: &str,
        town: Option<&str>,
        village: Option<&str>,
        program: Option<&str>,
        year: Option<i32>,
    ) -> Result<Vec<Total>, LedgerError> {
        let key = match group {
            "town" => "p.town_code",
            "village" => "p.village_code",
            "program" => "p.program_code",
            "year" => "extract(year FROM p.period_start)::int::text",
            _ => return Err(LedgerError::invalid("group_by", "请选择汇总方式")),
        };
        Ok(sqlx::query_as(&format!(
            "SELECT {key} AS key, count(*) FILTER (WHERE p.kind = 'payment') AS payments,
                    count(DISTINCT p.person_key) AS persons, sum(p.amount_fen)::bigint AS amount_fen
             FROM payments p
             WHERE ($1::text IS NULL OR p.town_code = $1) AND ($2::text IS NULL OR p.village_code = $2)
               AND ($3::text IS NULL OR p.program_code = $3)
               AND ($4::int IS NULL OR p.period_start >= make_date($4, 1, 1) AND p.period_start < make_date($4 + 1, 1, 1))
             GROUP BY 1 ORDER BY 1"
        ))
        .bind(town)
        .bind(village)
        .bind(program)
        .bind(year)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a staff member's read of a person's or household's payments
    /// before the data is returned: no record, no data. Citizens reading
    /// their own (through the gateway) and services are not staff reads.
    pub async fn record_staff_read(
        &self,
        caller: &Caller,
        subject: &Subject,
        method: &str,
    ) -> Result<(), LedgerError> {
        if !caller.role.is_staff() {
            return Ok(());
        }
        let subject = match subject {
            Subject::Person(key) => key.to_hex(),
            Subject::Household(code) => code.clone(),
        };
        sqlx::query(
            "INSERT INTO staff_reads (staff, role, subject, method) VALUES ($1, $2, $3, $4)",
        )
        .bind(&caller.sub)
        .bind(caller.role.as_str())
        .bind(subject)
        .bind(method)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_its_token() {
        let start = NaiveDate::from_ymd_opt(2026, 7, 1).expect("a date");
        for id in [1, 42, (1 << POSITION_ID_BITS) - 1] {
            let token = encode_position(start, id);
            assert_eq!(decode_position(&token).expect("valid"), Some((start, id)));
        }
        assert_eq!(decode_position("").expect("first page"), None);
        assert!(
            decode_position(&encode_token(7)).is_err(),
            "an id token is not a position"
        );
    }
}
