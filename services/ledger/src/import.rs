//! Importing a payment roll (花名册): every row is checked — the file itself,
//! then against identity's register, then against payments already made —
//! and the roll is applied in one transaction or not at all.
//!
//! The rows travel into PostgreSQL once, by COPY into a temporary table;
//! the checks against existing payments and the inserts of payments and
//! their events are set-based SQL over that table.

use std::collections::HashMap;

use futures::{StreamExt as _, TryStreamExt as _};
use huimin_kit::{
    auth::{Caller, Role},
    pii::{IdNumber, PersonKey, mask_name},
    status::FieldViolation,
};
use huimin_proto::identity::v1::{CheckOutcome, CheckPersonsRequest, PersonClaim};
use sha2::{Digest as _, Sha256};

use crate::{
    Ledger, LedgerError,
    domain::{EntryKind, Fen, Period, mask_bank_account},
    events,
    programs::Program,
    rollfile::{FileProblem, RawRow, read_roll},
};

/// Claims sent to identity per call, and calls in flight at once.
const CHECK_BATCH: usize = 5_000;
const CHECKS_IN_FLIGHT: usize = 4;
/// Problems listed in a report; the rest are counted.
const MAX_REPORTED: usize = 200;
/// The generation counter of every cached payment lookup.
pub const PAYMENTS_GENERATION: &str = "ledger:payments:generation";

/// What an import did (or, for a file seen before, what the first import did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollOutcome {
    pub roll_id: i64,
    pub created: bool,
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
}

/// An entry that identity recognised.
struct Checked {
    entry: Entry,
    person_key: PersonKey,
    id_masked: String,
    household_code: String,
}

/// Problems of one file, capped for the report but all counted.
#[derive(Default)]
struct Problems {
    listed: Vec<FieldViolation>,
    total: usize,
}

impl Problems {
    fn add(&mut self, line: usize, column: &str, message: impl Into<String>) {
        self.total += 1;
        if self.listed.len() < MAX_REPORTED {
            let field = if line == 0 {
                column.to_owned()
            } else {
                format!("第{line}行/{column}")
            };
            self.listed.push(FieldViolation::new(field, message));
        }
    }

    fn from_file(problems: Vec<FileProblem>) -> Self {
        let mut all = Self::default();
        for p in problems {
            all.add(p.line, &p.column, p.message);
        }
        all
    }

    fn into_result(self) -> Result<(), LedgerError> {
        if self.total == 0 {
            return Ok(());
        }
        let mut message = format!("花名册有{}处错误，未导入任何数据", self.total);
        if self.total > self.listed.len() {
            message.push_str(&format!("（仅列出前{}处）", self.listed.len()));
        }
        Err(LedgerError::Invalid {
            message,
            violations: self.listed,
        })
    }
}

impl Ledger {
    /// Checks and applies a roll file for `caller`.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub, bytes = bytes.len()))]
    pub async fn import_roll(
        &self,
        caller: &Caller,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<RollOutcome, LedgerError> {
        let digest = Sha256::digest(&bytes).to_vec();
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
        let name = file_name.to_owned();
        let raw = tokio::task::spawn_blocking(move || read_roll(&name, &bytes))
            .await
            .map_err(|e| LedgerError::Internal(e.into()))?;
        let raw = raw.map_err(
            |problems| match Problems::from_file(problems).into_result() {
                Err(error) => error,
                Ok(()) => LedgerError::invalid("文件", "无法读取花名册"),
            },
        )?;
        if raw.is_empty() {
            return Err(LedgerError::invalid("文件", "花名册中没有数据行"));
        }
        let programs = self.programs().await?;

        let mut problems = Problems::default();
        let entries = check_rows(caller, raw, &programs, &mut problems);
        let checked = self.check_with_identity(entries, &mut problems).await?;
        check_duplicates(&checked, &programs, &mut problems);
        problems.into_result()?;

        let outcome = self
            .apply(caller, file_name, &digest, &checked, &programs)
            .await?;
        if outcome.created {
            self.cache
                .invalidate_generation(PAYMENTS_GENERATION, crate::lookup::CACHE_TTL)
                .await;
        }
        Ok(outcome)
    }

    async fn roll_by_digest(
        &self,
        conn: &mut sqlx::PgConnection,
        digest: &[u8],
    ) -> Result<Option<RollOutcome>, LedgerError> {
        let row: Option<(i64, i32, i32, i64)> = sqlx::query_as(
            "SELECT id, payments, reversals, total_fen FROM rolls WHERE file_sha256 = $1",
        )
        .bind(digest)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(
            row.map(|(roll_id, payments, reversals, total_fen)| RollOutcome {
                roll_id,
                created: false,
                payments: u64::try_from(payments).unwrap_or(0),
                reversals: u64::try_from(reversals).unwrap_or(0),
                total_fen,
            }),
        )
    }

    /// Asks identity about every row with a valid ID number, a few batches at a time.
    async fn check_with_identity(
        &self,
        entries: Vec<Entry>,
        problems: &mut Problems,
    ) -> Result<Vec<Checked>, LedgerError> {
        let mut batches = Vec::new();
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            batches.push(entries.by_ref().take(CHECK_BATCH).collect::<Vec<Entry>>());
        }
        let identity = self.identity.clone();
        let answers: Vec<(Vec<Entry>, Vec<huimin_proto::identity::v1::PersonCheck>)> =
            futures::stream::iter(batches)
                .map(|batch| {
                    let mut identity = identity.clone();
                    async move {
                        let claims = batch
                            .iter()
                            .map(|e| PersonClaim {
                                id_number: e.id_number.expose().to_owned(),
                                name: e.name.clone(),
                            })
                            .collect();
                        let checks = identity
                            .check_persons(CheckPersonsRequest { claims })
                            .await
                            .map_err(LedgerError::IdentityUnavailable)?
                            .into_inner()
                            .checks;
                        Ok::<_, LedgerError>((batch, checks))
                    }
                })
                .buffered(CHECKS_IN_FLIGHT)
                .try_collect()
                .await?;

        let mut checked = Vec::new();
        for (batch, checks) in answers {
            if checks.len() != batch.len() {
                return Err(LedgerError::Internal(anyhow::anyhow!(
                    "identity answered {} of {} claims",
                    checks.len(),
                    batch.len()
                )));
            }
            for (entry, check) in batch.into_iter().zip(checks) {
                match CheckOutcome::try_from(check.outcome).unwrap_or(CheckOutcome::Unspecified) {
                    CheckOutcome::Match => {}
                    CheckOutcome::NameMismatch => {
                        problems.add(entry.line, "姓名", "姓名与身份证号登记信息不符");
                        continue;
                    }
                    CheckOutcome::Unknown => {
                        problems.add(entry.line, "身份证号", "该身份证号未在本县户籍信息中登记");
                        continue;
                    }
                    CheckOutcome::InvalidIdNumber | CheckOutcome::Unspecified => {
                        problems.add(entry.line, "身份证号", "身份证号无效");
                        continue;
                    }
                }
                if check.village_code != entry.village_code {
                    problems.add(entry.line, "村代码", "村代码与户籍登记的村不符");
                    continue;
                }
                let Ok(person_key) = PersonKey::from_hex(&check.person_key) else {
                    return Err(LedgerError::Internal(anyhow::anyhow!(
                        "identity sent a malformed person key"
                    )));
                };
                checked.push(Checked {
                    entry,
                    person_key,
                    id_masked: check.id_number_masked,
                    household_code: check.household_code,
                });
            }
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
        digest: &[u8],
        checked: &[Checked],
        programs: &HashMap<String, Program>,
    ) -> Result<RollOutcome, LedgerError> {
        let mut tx = self.pool.begin().await?;
        events::lock_writers(&mut tx).await?;
        if let Some(first) = self.roll_by_digest(&mut tx, digest).await? {
            return Ok(first);
        }
        sqlx::query(
            "CREATE TEMP TABLE incoming (
                line integer NOT NULL, person_key bytea NOT NULL, name_masked text NOT NULL,
                id_masked text NOT NULL, household_code text NOT NULL, village_code text NOT NULL,
                program_code text NOT NULL, per_household boolean NOT NULL, period text NOT NULL,
                period_start date NOT NULL, amount_fen bigint NOT NULL, kind text NOT NULL,
                bank_masked text NOT NULL, reverses bigint
             ) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        copy_incoming(&mut tx, checked, programs).await?;
        sqlx::query("CREATE INDEX ON incoming (person_key, program_code, period)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("ANALYZE incoming").execute(&mut *tx).await?;

        let mut problems = Problems::default();
        // A payment for a slot already paid (and not reversed in this file or before).
        let paid: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT i.line, p.roll_id FROM incoming i
             JOIN payments p ON p.person_key = i.person_key AND p.program_code = i.program_code
                            AND p.period = i.period AND p.kind = 'payment'
             WHERE i.kind = 'payment'
               AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)
               AND NOT EXISTS (SELECT 1 FROM incoming j WHERE j.kind = 'reversal' AND j.person_key = i.person_key
                               AND j.program_code = i.program_code AND j.period = i.period)
             ORDER BY i.line",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (line, roll) in paid {
            problems.add(
                usize::try_from(line).unwrap_or(0),
                "发放期间",
                format!("该人员本期已发放（第{roll}批），如需更正请先冲正"),
            );
        }
        // A per-household program the household already received: in this
        // period, or ever for a one-off (危房改造).
        let household_paid: Vec<(i32,)> = sqlx::query_as(
            "SELECT i.line FROM incoming i JOIN programs g ON g.code = i.program_code
             WHERE i.kind = 'payment' AND i.per_household
               AND EXISTS (SELECT 1 FROM payments p WHERE p.household_code = i.household_code
                           AND p.program_code = i.program_code AND p.kind = 'payment'
                           AND (g.period_kind = 'one_off' OR p.period = i.period)
                           AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id))
               AND NOT EXISTS (SELECT 1 FROM incoming j WHERE j.kind = 'reversal' AND j.household_code = i.household_code
                               AND j.program_code = i.program_code)
             ORDER BY i.line",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (line,) in household_paid {
            problems.add(
                usize::try_from(line).unwrap_or(0),
                "项目代码",
                "该户已享受过此项目，每户只能享受一次",
            );
        }
        // Each reversal names a live payment of the same person, program, period and amount.
        sqlx::query(
            "UPDATE incoming i SET reverses = (
                 SELECT p.id FROM payments p
                 WHERE p.person_key = i.person_key AND p.program_code = i.program_code AND p.period = i.period
                   AND p.amount_fen = i.amount_fen AND p.kind = 'payment'
                   AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)
                 ORDER BY p.id LIMIT 1)
             WHERE i.kind = 'reversal'",
        )
        .execute(&mut *tx)
        .await?;
        let orphans: Vec<(i32,)> = sqlx::query_as(
            "SELECT line FROM incoming WHERE kind = 'reversal' AND reverses IS NULL ORDER BY line",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (line,) in orphans {
            problems.add(
                usize::try_from(line).unwrap_or(0),
                "类型",
                "未找到可冲正的原发放记录（人员、项目、期间、金额须一致）",
            );
        }
        problems.into_result()?;

        let payments = checked
            .iter()
            .filter(|c| c.entry.kind == EntryKind::Payment)
            .count() as u64;
        let reversals = checked.len() as u64 - payments;
        let total_fen: i64 = checked
            .iter()
            .map(|c| {
                if c.entry.kind == EntryKind::Payment {
                    c.entry.amount
                } else {
                    -c.entry.amount
                }
            })
            .sum();
        let roll_id: i64 = sqlx::query_scalar(
            "INSERT INTO rolls (file_sha256, file_name, imported_by, payments, reversals, total_fen)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(digest)
        .bind(file_name)
        .bind(&caller.sub)
        .bind(i32::try_from(payments).unwrap_or(i32::MAX))
        .bind(i32::try_from(reversals).unwrap_or(i32::MAX))
        .bind(total_fen)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO payments (roll_id, line, person_key, name_masked, id_masked, household_code, village_code,
                                   program_code, period, period_start, amount_fen, kind, reverses, bank_masked)
             SELECT $1, line, person_key, name_masked, id_masked, household_code, village_code, program_code,
                    period, period_start, CASE kind WHEN 'reversal' THEN -amount_fen ELSE amount_fen END,
                    kind, reverses, bank_masked
             FROM incoming ORDER BY line",
        )
        .bind(roll_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (event_id, kind, payload)
             SELECT gen_random_uuid(), 'payment.posted', jsonb_build_object(
                 'payment_id', id, 'roll_id', roll_id, 'person_key', encode(person_key, 'hex'),
                 'household_code', household_code, 'village_code', village_code, 'program_code', program_code,
                 'period', period, 'amount_fen', amount_fen, 'kind', kind)
             FROM payments WHERE roll_id = $1 ORDER BY id",
        )
        .bind(roll_id)
        .execute(&mut *tx)
        .await?;
        let summary = serde_json::json!({
            "roll_id": roll_id, "file_name": file_name, "imported_by": caller.sub,
            "payments": payments, "reversals": reversals, "total_fen": total_fen,
        });
        events::append(&mut tx, "roll.imported", &summary).await?;
        tx.commit().await?;
        tracing::info!(roll_id, payments, reversals, total_fen, "roll imported");
        Ok(RollOutcome {
            roll_id,
            created: true,
            payments,
            reversals,
            total_fen,
        })
    }
}

/// File-level checks of each row; rows that pass become entries.
fn check_rows(
    caller: &Caller,
    raw: Vec<RawRow>,
    programs: &HashMap<String, Program>,
    problems: &mut Problems,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(raw.len());
    for row in raw {
        let before = problems.total;
        let line = row.line;
        let kind = EntryKind::parse(&row.kind)
            .map_err(|e| problems.add(line, "类型", e.message_zh()))
            .ok();
        let name = row.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 50 {
            problems.add(line, "姓名", "姓名不能为空，且不超过50个字");
        }
        let id_number = IdNumber::parse(&row.id_number)
            .map_err(|e| problems.add(line, "身份证号", e.message_zh()))
            .ok();
        let village_ok =
            row.village_code.len() == 12 && row.village_code.bytes().all(|b| b.is_ascii_digit());
        if !village_ok {
            problems.add(line, "村代码", "村代码应为12位数字");
        }
        let program = programs.get(row.program_code.trim());
        let period = match program {
            None => {
                problems.add(line, "项目代码", "项目代码不存在");
                None
            }
            Some(p) if !p.active => {
                problems.add(line, "项目代码", "该项目已停止发放");
                None
            }
            Some(p)
                if caller.role == Role::Department
                    && caller.scope.as_deref() != Some(p.department.as_str()) =>
            {
                problems.add(line, "项目代码", "该项目不属于您所在的部门");
                None
            }
            Some(p) => match p.kind() {
                Ok(kind) => Period::parse(kind, &row.period)
                    .map_err(|e| problems.add(line, "发放期间", e.message_zh()))
                    .ok(),
                Err(_) => None,
            },
        };
        let amount = match Fen::parse_yuan(&row.amount) {
            Ok(fen) if fen.fen() <= 0 => {
                problems.add(line, "金额", "金额必须大于0");
                None
            }
            Ok(fen) => match program {
                Some(p) if fen.fen() > p.ceiling_fen => {
                    problems.add(
                        line,
                        "金额",
                        format!("金额超过该项目每期上限{}元", Fen::from_fen(p.ceiling_fen)),
                    );
                    None
                }
                _ => Some(fen.fen()),
            },
            Err(e) => {
                problems.add(line, "金额", e.message_zh());
                None
            }
        };
        let bank_masked = if row.bank_account.trim().is_empty() {
            Some(String::new())
        } else {
            mask_bank_account(&row.bank_account)
                .map_err(|e| problems.add(line, "银行账号", e.message_zh()))
                .ok()
        };
        if problems.total != before {
            continue;
        }
        if let (
            Some(kind),
            Some(id_number),
            Some(program),
            Some(period),
            Some(amount),
            Some(bank_masked),
        ) = (kind, id_number, program, period, amount, bank_masked)
        {
            entries.push(Entry {
                line,
                kind,
                id_number,
                name,
                village_code: row.village_code,
                program: program.code.clone(),
                period,
                amount,
                bank_masked,
            });
        }
    }
    entries
}

/// The same person, program, period and kind twice in one file; or, for a
/// per-household program, two members of one household.
fn check_duplicates(
    checked: &[Checked],
    programs: &HashMap<String, Program>,
    problems: &mut Problems,
) {
    let mut first_line: HashMap<(&str, &str, &str, EntryKind), usize> = HashMap::new();
    let keys: Vec<String> = checked.iter().map(|c| c.person_key.to_hex()).collect();
    for (c, key) in checked.iter().zip(&keys) {
        let program = programs.get(&c.entry.program);
        let per_household = program.is_some_and(|p| p.per_household);
        let once = program.is_some_and(|p| p.period_kind == "one_off");
        let who = if per_household {
            c.household_code.as_str()
        } else {
            key.as_str()
        };
        let period = if once { "" } else { c.entry.period.text() };
        if let Some(first) = first_line.insert(
            (who, c.entry.program.as_str(), period, c.entry.kind),
            c.entry.line,
        ) {
            let what = if per_household {
                "同一户、项目、期间"
            } else {
                "同一人员、项目、期间"
            };
            problems.add(
                c.entry.line,
                "身份证号",
                format!("与第{first}行重复（{what}）"),
            );
        }
    }
}

async fn copy_incoming(
    tx: &mut sqlx::PgConnection,
    checked: &[Checked],
    programs: &HashMap<String, Program>,
) -> Result<(), LedgerError> {
    let mut copy = tx
        .copy_in_raw(
            "COPY incoming (line, person_key, name_masked, id_masked, household_code, village_code, program_code,
                            per_household, period, period_start, amount_fen, kind, bank_masked)
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    for chunk in checked.chunks(10_000) {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(chunk.len() * 160));
        for c in chunk {
            let per_household = programs
                .get(&c.entry.program)
                .is_some_and(|p| p.per_household);
            writer
                .write_record([
                    c.entry.line.to_string().as_str(),
                    &format!("\\x{}", c.person_key.to_hex()),
                    &mask_name(&c.entry.name),
                    &c.id_masked,
                    &c.household_code,
                    &c.entry.village_code,
                    &c.entry.program,
                    if per_household { "t" } else { "f" },
                    c.entry.period.text(),
                    &c.entry.period.start().to_string(),
                    &c.entry.amount.to_string(),
                    if c.entry.kind == EntryKind::Payment {
                        "payment"
                    } else {
                        "reversal"
                    },
                    &c.entry.bank_masked,
                ])
                .map_err(|e| LedgerError::Internal(e.into()))?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| LedgerError::Internal(anyhow::anyhow!("csv buffer: {e}")))?;
        copy.send(bytes).await?;
    }
    copy.finish().await?;
    Ok(())
}
