//! Writing and verifying the audit trail in PostgreSQL; the hashing itself
//! is in [`crate::chain`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::{
    chain::{self, AuditEntry, ChainBreak, ChainKey, Head},
    domain::AuditAction,
    error::WhistleError,
};

/// Serializes appends so each entry links to the one committed before it.
const AUDIT_LOCK: i64 = 0x4155_4449_5400; // "AUDIT"

/// Who did something, as the trail names them: never a reporter's identity.
#[derive(Debug, Clone)]
pub enum Actor {
    System,
    Reporter,
    Staff(String),
}

impl Actor {
    fn name(&self) -> String {
        match self {
            Actor::System => "system".to_owned(),
            Actor::Reporter => "reporter".to_owned(),
            Actor::Staff(username) => format!("staff:{username}"),
        }
    }
}

/// Appends an entry in the caller's transaction.
pub async fn record(
    tx: &mut PgConnection,
    key: &ChainKey,
    at: DateTime<Utc>,
    actor: &Actor,
    action: AuditAction,
    report_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), WhistleError> {
    append(
        tx,
        key,
        at,
        &actor.name(),
        action.as_str(),
        report_id,
        detail,
    )
    .await
}

/// Holds an entry until `day` is over (see the `pending_audit` migration).
pub async fn defer(
    tx: &mut PgConnection,
    day: chrono::NaiveDate,
    actor: &Actor,
    action: AuditAction,
    report_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), WhistleError> {
    sqlx::query("INSERT INTO pending_audit (day, actor, action, report_id, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(day)
        .bind(actor.name())
        .bind(action.as_str())
        .bind(report_id)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Adds anonymous report ids a staff member was shown to their one held
/// listing entry of `day`, which joins the chain when the day is sealed.
pub async fn defer_listing(
    tx: &mut PgConnection,
    day: chrono::NaiveDate,
    actor: &Actor,
    reports: &[i64],
) -> Result<(), WhistleError> {
    // The union, kept sorted, so the entry says nothing of the order
    // in which reports were first shown.
    sqlx::query(
        "INSERT INTO pending_audit (day, actor, action, detail)
         VALUES ($1, $2, $3, jsonb_build_object('anonymous_reports', $4::jsonb))
         ON CONFLICT (day, actor) WHERE action = 'reports.listed' DO UPDATE SET detail =
             jsonb_build_object('anonymous_reports', (
                 SELECT jsonb_agg(DISTINCT r ORDER BY r) FROM jsonb_array_elements(
                     (pending_audit.detail->'anonymous_reports') || (EXCLUDED.detail->'anonymous_reports')) r))",
    )
    .bind(day)
    .bind(actor.name())
    .bind(AuditAction::ReportsListed.as_str())
    .bind(serde_json::json!(sorted(reports)))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn sorted(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Appends an entry in the caller's transaction, its action as stored
/// (the sealer moves held entries in as they were written).
pub(crate) async fn append(
    tx: &mut PgConnection,
    key: &ChainKey,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    report_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), WhistleError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK)
        .execute(&mut *tx)
        .await?;
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (
            seq + 1,
            <[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]),
        ),
        None => (1, [0; 32]),
    };
    // PostgreSQL keeps microseconds: hash exactly what will be read back.
    let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    let fields = chain::Fields {
        seq,
        at,
        actor,
        action,
        report_id,
        detail: &detail,
        prev_hash: &prev_hash,
    };
    let hash = chain::entry_mac(key, &fields);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, report_id, detail, prev_hash, hash, keyed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true)",
    )
    .bind(seq)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(report_id)
    .bind(detail)
    .bind(prev_hash.as_slice())
    .bind(hash.as_slice())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    report_id: Option<i64>,
    detail: serde_json::Value,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    keyed: bool,
}

/// The chain's last entry, as the head publisher reads it.
pub async fn head(pool: &PgPool) -> Result<Option<Head>, WhistleError> {
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(last.map(|(seq, hash)| Head {
        seq,
        hash: <[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]),
    }))
}

/// Recomputes the whole chain and checks it against the head last
/// published (`published`); the inner result names the first bad entry.
pub async fn verify(
    pool: &PgPool,
    key: &ChainKey,
    unkeyed_until: i64,
    published: Option<&Head>,
) -> Result<Result<usize, ChainBreak>, WhistleError> {
    let mut entries = Vec::new();
    let mut after = 0i64;
    loop {
        let page: Vec<Row> = sqlx::query_as(
            "SELECT seq, at, actor, action, report_id, detail, prev_hash, hash, keyed FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT 10000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page.into_iter().map(|r| AuditEntry {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            report_id: r.report_id,
            detail: r.detail,
            prev_hash: <[u8; 32]>::try_from(r.prev_hash.as_slice()).unwrap_or([0; 32]),
            hash: <[u8; 32]>::try_from(r.hash.as_slice()).unwrap_or([0; 32]),
            keyed: r.keyed,
        }));
    }
    Ok(chain::verify(entries.iter(), key, unkeyed_until, published))
}
