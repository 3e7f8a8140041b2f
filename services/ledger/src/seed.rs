//! `huimin seed` for ledger: ten years of synthetic payments for the
//! synthetic county, with the planted irregularities documented in
//! [`crate::synth`], loaded with COPY in one transaction as one roll.
//!
//! Seeded payments are history, not news: they get no `payment.posted`
//! events, so nobody is alerted about ten years of old money.

use std::time::{Duration, Instant};

use chrono::{Datelike as _, NaiveDate};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest as _, Sha256};

use crate::{
    Ledger, LedgerError, events,
    synth::{PaymentPlan, Planted, SeedPerson, SeedProgram},
};

/// What a payments seed did.
#[derive(Debug)]
pub struct PaymentsSeedReport {
    pub payments: u64,
    pub total_fen: i64,
    pub planted: Vec<Planted>,
    pub elapsed: Duration,
}

const SEED: u64 = 450_923;
const BATCH: usize = 50_000;

impl Ledger {
    /// Seeds payments for `households` (each a list of members, head first)
    /// when ledger has none; `None` when it already has payments.
    pub async fn seed_payments(
        &self,
        households: impl Iterator<Item = Vec<SeedPerson>>,
        expected_persons: u64,
        today: NaiveDate,
    ) -> Result<Option<PaymentsSeedReport>, LedgerError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        events::lock_writers(&mut tx).await?;
        let any: Option<i64> = sqlx::query_scalar("SELECT id FROM payments LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if any.is_some() {
            return Ok(None);
        }
        let programs: Vec<SeedProgram> = self
            .programs()
            .await?
            .into_values()
            .filter_map(|p| {
                let kind = match p.period_kind.as_str() {
                    "monthly" => "monthly",
                    "quarterly" => "quarterly",
                    "yearly" => "yearly",
                    "one_off" => "one_off",
                    _ => return None,
                };
                Some(SeedProgram {
                    code: p.code,
                    period_kind: kind,
                    standard_fen: p.standard_fen,
                    ceiling_fen: p.ceiling_fen,
                    per_household: p.per_household,
                })
            })
            .collect();
        // Ten years up to last month.
        let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
            .expect("first of a month exists");
        let last_period = this_month
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(this_month);
        let mut plan = PaymentPlan::new(programs, last_period.year() - 9, last_period, SEED);

        let roll_id: i64 = sqlx::query_scalar(
            "INSERT INTO rolls (file_sha256, file_name, imported_by, payments, reversals, total_fen)
             VALUES ($1, '历史发放数据（合成）', 'huimin seed', 0, 0, 0) RETURNING id",
        )
        .bind(Sha256::digest(format!("huimin seed {SEED} {today}")).to_vec())
        .fetch_one(&mut *tx)
        .await?;

        let progress = ProgressBar::new(expected_persons).with_style(
            ProgressStyle::with_template(
                "{spinner} seeding payments for persons {pos}/{len} {per_sec} eta {eta}",
            )
            .expect("template is valid"),
        );
        let mut writer = csv_writer();
        let (mut rows, mut payments, mut total_fen) = (0usize, 0u64, 0i64);
        for members in households {
            progress.inc(members.len() as u64);
            for p in plan.household_payments(&members) {
                writer
                    .write_record([
                        roll_id.to_string().as_str(),
                        "0",
                        &format!("\\x{}", hex::encode(p.person_key)),
                        &p.name_masked,
                        &p.id_masked,
                        &p.household_code,
                        &p.village_code,
                        &p.program_code,
                        &p.period,
                        &p.period_start.to_string(),
                        &p.amount_fen.to_string(),
                        "payment",
                        &p.bank_masked,
                    ])
                    .map_err(|e| LedgerError::internal(e.into()))?;
                rows += 1;
                payments += 1;
                total_fen += p.amount_fen;
            }
            if rows >= BATCH {
                copy_payments(&mut tx, std::mem::replace(&mut writer, csv_writer())).await?;
                rows = 0;
            }
        }
        copy_payments(&mut tx, writer).await?;
        sqlx::query("UPDATE rolls SET payments = $2, total_fen = $3 WHERE id = $1")
            .bind(roll_id)
            .bind(i32::try_from(payments).unwrap_or(i32::MAX))
            .bind(total_fen)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        progress.finish_and_clear();
        let report = PaymentsSeedReport {
            payments,
            total_fen,
            planted: plan.planted().to_vec(),
            elapsed: started.elapsed(),
        };
        tracing::info!(payments, planted = report.planted.len(), "payments seeded");
        Ok(Some(report))
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
                            program_code, period, period_start, amount_fen, kind, bank_masked)
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}
