//! Loading payment history in bulk, for trusted tools (`huimin seed`): payments made
//! before huimin, written by COPY in one transaction as one roll, into a ledger that has
//! no payments yet.
//!
//! History is not news: loaded payments get no `payment.posted` events, so nobody is
//! alerted about years of old money.

use huimin_kit::pii::PersonKey;

use crate::{
    Ledger, LedgerError,
    domain::{EntryKind, Period},
    events,
};

/// The roll a history load is recorded as.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRoll<'a> {
    pub file_name: &'a str,
    pub imported_by: &'a str,
    /// Stands in for the file's SHA-256: the same history loaded again is the same roll.
    pub fingerprint: [u8; 32],
}

/// One payment of the history, masked as the ledger keeps every payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoricPayment {
    pub person_key: PersonKey,
    pub name_masked: String,
    pub id_masked: String,
    pub household_code: String,
    pub village_code: String,
    pub program_code: String,
    pub period: Period,
    /// Positive: history holds payments, not reversals.
    pub amount_fen: i64,
    /// Like `6228********5678`, or empty.
    pub bank_masked: String,
    /// The keyed hash of the account ([`crate::bank::BankKeyer`]), if one is known.
    pub bank_hash: Option<[u8; 32]>,
}

/// What a history load wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLoaded {
    pub roll_id: i64,
    pub payments: u64,
    pub total_fen: i64,
}

/// Rows per COPY.
const BATCH: usize = 50_000;

impl Ledger {
    /// Writes `payments` as the roll `roll` when ledger has no payments; `None`, with
    /// nothing written, when it has some.
    pub async fn load_history(
        &self,
        roll: HistoryRoll<'_>,
        payments: impl Iterator<Item = HistoricPayment>,
    ) -> Result<Option<HistoryLoaded>, LedgerError> {
        let mut tx = self.pool.begin().await?;
        events::lock_writers(&mut tx).await?;
        let any: Option<i64> = sqlx::query_scalar("SELECT id FROM payments LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if any.is_some() {
            return Ok(None);
        }
        let roll_id: i64 = sqlx::query_scalar(
            "INSERT INTO rolls (file_sha256, file_name, imported_by, payments, reversals, total_fen)
             VALUES ($1, $2, $3, 0, 0, 0) RETURNING id",
        )
        .bind(roll.fingerprint.as_slice())
        .bind(roll.file_name)
        .bind(roll.imported_by)
        .fetch_one(&mut *tx)
        .await?;

        let mut writer = csv_writer();
        let (mut rows, mut count, mut total_fen) = (0usize, 0u64, 0i64);
        for p in payments {
            let bank_hash = p
                .bank_hash
                .map(|h| format!("\\x{}", hex::encode(h)))
                .unwrap_or_default();
            writer
                .write_record([
                    roll_id.to_string().as_str(),
                    "0",
                    &format!("\\x{}", p.person_key.to_hex()),
                    &p.name_masked,
                    &p.id_masked,
                    &p.household_code,
                    &p.village_code,
                    &p.program_code,
                    p.period.text(),
                    &p.period.start().to_string(),
                    &p.amount_fen.to_string(),
                    EntryKind::Payment.as_str(),
                    &p.bank_masked,
                    &bank_hash,
                ])
                .map_err(|e| LedgerError::internal(e.into()))?;
            rows += 1;
            count += 1;
            total_fen += p.amount_fen;
            if rows >= BATCH {
                copy_payments(&mut tx, std::mem::replace(&mut writer, csv_writer())).await?;
                rows = 0;
            }
        }
        copy_payments(&mut tx, writer).await?;
        sqlx::query("UPDATE rolls SET payments = $2, total_fen = $3 WHERE id = $1")
            .bind(roll_id)
            .bind(i32::try_from(count).unwrap_or(i32::MAX))
            .bind(total_fen)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(roll_id, payments = count, "payment history loaded");
        // A bulk load leaves the visibility map empty and no statistics: the cross-checks'
        // index-only passes would read every heap page (measured on a county: paid_twice
        // 16.6 s right after the load, 8.6 s after a vacuum). Best effort: a role that does
        // not own the table is skipped by PostgreSQL with a warning, autovacuum follows.
        // The simple query protocol: VACUUM refuses to run inside any transaction block.
        if let Err(error) = sqlx::raw_sql("VACUUM (ANALYZE) payments")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(%error, "vacuum after the history load failed; autovacuum will follow");
        }
        Ok(Some(HistoryLoaded {
            roll_id,
            payments: count,
            total_fen,
        }))
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

async fn copy_payments(
    tx: &mut sqlx::PgConnection,
    writer: csv::Writer<Vec<u8>>,
) -> Result<(), LedgerError> {
    let data = writer
        .into_inner()
        .map_err(|e| LedgerError::internal(anyhow::anyhow!("csv buffer: {e}")))?;
    if data.is_empty() {
        return Ok(());
    }
    let mut copy = tx
        .copy_in_raw(
            "COPY payments (roll_id, line, person_key, name_masked, id_masked, household_code, village_code,
                            program_code, period, period_start, amount_fen, kind, bank_masked, bank_hash)
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}
