//! Importing a payment roll (花名册): every row is checked — the file itself,
//! then against identity's register, then against payments already made —
//! and the roll is applied in one transaction or not at all.
//!
//! The rows travel into PostgreSQL once, by COPY straight into `payments`,
//! in village, household and line order so the household and slot indexes
//! grow at one point per village. What the checks need of payments already
//! made is read once per program (see [`live`]) and matched in memory,
//! under the writers' lock. A roll's `payment.posted` events are one outbox
//! span over its block of payment ids, built when read.

mod live;
mod register;
mod rows;
mod write;

use std::collections::HashMap;

use futures::{StreamExt as _, TryStreamExt as _};
use huimin_kit::{
    auth::Caller,
    pii::{IdNumber, PersonKey},
    problems::Problems,
};
use huimin_proto::identity::v1::{CheckOutcome, CheckPersonsRequest, PersonClaim};
use sha2::{Digest as _, Sha256};

use self::{
    live::{check_against_live, live_payments},
    register::Refusal,
    rows::{check_duplicates, check_rows},
    write::copy_payments,
};
use crate::{
    Ledger, LedgerError,
    cache_keys::{CACHE_TTL, PAYMENTS_GENERATION},
    domain::{EntryKind, Period, RollKind},
    events,
    programs::Program,
    rollfile::read_roll,
};

/// Claims sent to identity per call, and calls in flight at once.
const CHECK_BATCH: usize = 5_000;
const CHECKS_IN_FLIGHT: usize = 4;

/// What an import did (or, for a file seen before, what the first import did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollOutcome {
    pub roll_id: i64,
    pub created: bool,
    /// As recorded (the first import's, for a file seen before).
    pub kind: RollKind,
    pub payments: u64,
    pub reversals: u64,
    pub total_fen: i64,
}

/// A row that passed the file-level checks.
struct Entry {
    line: usize,
    kind: EntryKind,
    id_number: IdNumber,
    name: String,
    village_code: String,
    program: String,
    period: Period,
    amount: i64,
    bank_masked: String,
    /// The keyed hash of the account, for the shared-account check.
    bank_hash: Option<[u8; 32]>,
}

/// An entry that identity recognised.
struct Checked {
    entry: Entry,
    person_key: PersonKey,
    id_masked: String,
    household_code: String,
}

/// What a roll is called in the summary of its problems.
const SUBJECT: &str = "花名册";

impl Ledger {
    /// Checks and applies a roll file for `caller`.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub, bytes = bytes.len()))]
    pub async fn import_roll(
        &self,
        caller: &Caller,
        file_name: &str,
        roll_kind: RollKind,
        bytes: Vec<u8>,
    ) -> Result<RollOutcome, LedgerError> {
        let started = std::time::Instant::now();
        // Hashing and parsing a big file take seconds: off the runtime's threads.
        let (digest, bytes) = tokio::task::spawn_blocking(move || {
            let digest = Sha256::digest(&bytes).to_vec();
            (digest, bytes)
        })
        .await
        .map_err(|e| LedgerError::internal(e.into()))?;
        if let Some(first) = self
            .roll_by_digest(&mut *self.pool.acquire().await?, &digest)
            .await?
        {
            tracing::info!(
                roll_id = first.roll_id,
                "roll imported before; nothing to do"
            );
            return Ok(first);
        }
        let programs = self.programs().await?;
        let (name, who, known) = (file_name.to_owned(), caller.clone(), programs.clone());
        let limits = self.imports;
        let bank = self.bank.clone();
        let (entries, mut problems) = tokio::task::spawn_blocking(move || {
            let raw =
                read_roll(&name, &bytes, &limits).map_err(|problems| problems.report(SUBJECT))?;
            if raw.is_empty() {
                return Err(LedgerError::invalid("文件", "花名册中没有数据行"));
            }
            tracing::debug!(
                rows = raw.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "roll read"
            );
            let mut problems = Problems::default();
            let entries = check_rows(&who, roll_kind, &bank, raw, &known, &mut problems);
            Ok((entries, problems))
        })
        .await
        .map_err(|e| LedgerError::internal(e.into()))??;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rows checked"
        );
        // The limit is checked before the register is asked, the record
        // written whatever the import's outcome.
        self.refuse_if_probing(caller).await?;
        let before = problems.total();
        let checked = self
            .check_with_identity(caller, entries, &mut problems)
            .await?;
        self.record_register_failures(caller, &digest, problems.total() - before)
            .await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "persons checked with identity"
        );
        if roll_kind.refuses_breaches() {
            check_duplicates(&checked, &programs, &mut problems);
        }
        problems
            .into_result(())
            .map_err(|problems| problems.report(SUBJECT))?;

        let outcome = self
            .apply(caller, file_name, roll_kind, &digest, &checked, &programs)
            .await?;
        if outcome.created {
            self.cache
                .invalidate_generation(PAYMENTS_GENERATION, CACHE_TTL)
                .await;
            // The roll's incremental cross-check is queued; wake the worker.
            self.checks_wakeup.notify_one();
        }
        Ok(outcome)
    }

    async fn roll_by_digest(
        &self,
        conn: &mut sqlx::PgConnection,
        digest: &[u8],
    ) -> Result<Option<RollOutcome>, LedgerError> {
        let row: Option<(i64, i32, i32, i64, String)> = sqlx::query_as(
            "SELECT id, payments, reversals, total_fen, kind FROM rolls WHERE file_sha256 = $1",
        )
        .bind(digest)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(
            |(roll_id, payments, reversals, total_fen, kind)| RollOutcome {
                roll_id,
                created: false,
                kind: RollKind::from_stored(&kind).unwrap_or_default(),
                payments: u64::try_from(payments).unwrap_or(0),
                reversals: u64::try_from(reversals).unwrap_or(0),
                total_fen,
            },
        ))
    }

    /// Asks identity about every person of the file (once each, however
    /// many rows they have), a few batches at a time.
    async fn check_with_identity(
        &self,
        caller: &Caller,
        entries: Vec<Entry>,
        problems: &mut Problems,
    ) -> Result<Vec<Checked>, LedgerError> {
        let mut claim_of: HashMap<(&str, &str), usize> = HashMap::new();
        let mut claims: Vec<PersonClaim> = Vec::new();
        let slots: Vec<usize> = entries
            .iter()
            .map(|e| {
                *claim_of
                    .entry((e.id_number.expose(), e.name.as_str()))
                    .or_insert_with(|| {
                        claims.push(PersonClaim {
                            id_number: e.id_number.expose().to_owned(),
                            name: e.name.clone(),
                        });
                        claims.len() - 1
                    })
            })
            .collect();
        drop(claim_of);
        let mut batches = Vec::new();
        let mut claims = claims.into_iter().peekable();
        while claims.peek().is_some() {
            batches.push(claims.by_ref().take(CHECK_BATCH).collect::<Vec<_>>());
        }
        let identity = self.identity.clone();
        let answers: Vec<Vec<huimin_proto::identity::v1::PersonCheck>> =
            futures::stream::iter(batches)
                .map(|claims| {
                    let mut identity = identity.clone();
                    async move {
                        let asked = claims.len();
                        let checks = identity
                            .check_persons(CheckPersonsRequest { claims })
                            .await
                            .map_err(|status| LedgerError::peer_unavailable("identity", status))?
                            .into_inner()
                            .checks;
                        if checks.len() != asked {
                            return Err(LedgerError::internal(anyhow::anyhow!(
                                "identity answered {} of {asked} claims",
                                checks.len()
                            )));
                        }
                        Ok::<_, LedgerError>(checks)
                    }
                })
                .buffered(CHECKS_IN_FLIGHT)
                .try_collect()
                .await?;
        let checks: Vec<_> = answers.into_iter().flatten().collect();
        let keys = checks
            .iter()
            .map(|c| match CheckOutcome::try_from(c.outcome) {
                Ok(CheckOutcome::Match) => PersonKey::from_hex(&c.person_key).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<Option<PersonKey>>, _>>()
            .map_err(|_| {
                LedgerError::internal(anyhow::anyhow!("identity sent a malformed person key"))
            })?;

        let mut checked = Vec::with_capacity(entries.len());
        for (entry, slot) in entries.into_iter().zip(slots) {
            let check = &checks[slot];
            let outcome =
                CheckOutcome::try_from(check.outcome).unwrap_or(CheckOutcome::Unspecified);
            let refusal = Refusal::of(outcome).or_else(|| {
                (check.village_code != entry.village_code).then_some(Refusal::WrongVillage)
            });
            if let Some(refusal) = refusal {
                let (column, message) = refusal.reported(caller.role);
                problems.add(entry.line, column, message);
                continue;
            }
            let Some(person_key) = keys[slot] else {
                continue;
            };
            checked.push(Checked {
                entry,
                person_key,
                id_masked: check.id_number_masked.clone(),
                household_code: check.household_code.clone(),
            });
        }
        Ok(checked)
    }

    /// Writes the roll in one transaction, after the checks that depend on
    /// payments already made (done under the writers' lock, so no other
    /// import can slip in between check and write).
    async fn apply(
        &self,
        caller: &Caller,
        file_name: &str,
        roll_kind: RollKind,
        digest: &[u8],
        checked: &[Checked],
        programs: &HashMap<String, Program>,
    ) -> Result<RollOutcome, LedgerError> {
        let mut tx = self.pool.begin().await?;
        events::lock_writers(&mut tx).await?;
        if let Some(first) = self.roll_by_digest(&mut tx, digest).await? {
            return Ok(first);
        }
        let live = live_payments(&mut tx, checked, programs).await?;
        let mut problems = Problems::default();
        let reverses = check_against_live(roll_kind, checked, programs, &live, &mut problems);
        problems
            .into_result(())
            .map_err(|problems| problems.report(SUBJECT))?;

        let payments = checked
            .iter()
            .filter(|c| c.entry.kind == EntryKind::Payment)
            .count() as u64;
        let reversals = checked.len() as u64 - payments;
        let total_fen: i64 = checked.iter().map(Checked::signed_amount).sum();
        let roll_id: i64 = sqlx::query_scalar(
            "INSERT INTO rolls (file_sha256, file_name, imported_by, payments, reversals, total_fen, kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(digest)
        .bind(file_name)
        .bind(&caller.sub)
        .bind(i32::try_from(payments).unwrap_or(i32::MAX))
        .bind(i32::try_from(reversals).unwrap_or(i32::MAX))
        .bind(total_fen)
        .bind(roll_kind.as_str())
        .fetch_one(&mut *tx)
        .await?;

        // Rows go in, and take their ids, by village, household and file
        // line: the household and disclosure (slot) indexes then grow at one
        // point per village instead of everywhere at once (measured: 18.4 s
        // → 10.9 s for the COPY of a 1,000,000-row roll), and a village's
        // disclosure list reads household by household.
        let mut order: Vec<usize> = (0..checked.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&checked[a], &checked[b]);
            (&a.entry.village_code, &a.household_code, a.entry.line).cmp(&(
                &b.entry.village_code,
                &b.household_code,
                b.entry.line,
            ))
        });
        let count = i64::try_from(order.len()).unwrap_or(i64::MAX);
        // One block of ids, the span of the roll's events: under the writers'
        // lock nothing else draws from the sequence meanwhile.
        let first_id = huimin_kit::db::reserve_serial(&mut tx, "payments", "id", count).await?;
        copy_payments(&mut tx, roll_id, first_id, checked, &order, &reverses).await?;

        let now = chrono::Utc::now();
        let span = serde_json::json!({
            "roll_id": roll_id, "first_payment_id": first_id, "payments": count,
        });
        events::OUTBOX
            .append_span(&mut tx, events::PAYMENT_POSTED, &span, count, now)
            .await?;
        // The roll's incremental cross-check, queued in its own transaction.
        sqlx::query("INSERT INTO check_queue (roll_id) VALUES ($1)")
            .bind(roll_id)
            .execute(&mut *tx)
            .await?;
        let summary = serde_json::json!({
            "roll_id": roll_id, "file_name": file_name, "imported_by": caller.sub,
            "kind": roll_kind.as_str(),
            "payments": payments, "reversals": reversals, "total_fen": total_fen,
        });
        events::append(&mut tx, "roll.imported", &summary).await?;
        tx.commit().await?;
        tracing::info!(
            roll_id,
            payments,
            reversals,
            total_fen,
            kind = roll_kind.as_str(),
            "roll imported"
        );
        Ok(RollOutcome {
            roll_id,
            created: true,
            kind: roll_kind,
            payments,
            reversals,
            total_fen,
        })
    }
}

impl Checked {
    /// The amount as stored: a reversal's is negative.
    fn signed_amount(&self) -> i64 {
        match self.entry.kind {
            EntryKind::Payment => self.entry.amount,
            EntryKind::Reversal => -self.entry.amount,
        }
    }
}
