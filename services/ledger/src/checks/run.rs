//! A run of the rules: full (the whole county) or incremental (the persons and households a
//! roll or a facts import touched). One transaction per run, under one lock, so two runs
//! never interleave and a run's findings land together or not at all.
//!
//! Findings are kept by `(rule, dedupe_key)`: a cause seen again is the same finding (its
//! evidence refreshed), a closed finding whose cause is back opens again, a dismissed or
//! reported one stays as staff left it. An open finding within the run's reach whose cause
//! the run no longer sees (a reversal, a corrected fact) closes by itself.

use std::time::Instant;

use sqlx::{Postgres, postgres::PgArguments, query::Query};

use super::{
    rules::{Rule, RuleSet},
    sql::{Arg, Reach, RuleQuery, rule_query},
};
use crate::{Ledger, LedgerError};

/// What a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every payment and fact.
    Full,
    /// The persons of one roll (its payments and reversals) and their households.
    Roll(i64),
    /// These persons (whose facts changed) and their households.
    Persons(Vec<Vec<u8>>),
}

impl Scope {
    fn name(&self) -> &'static str {
        match self {
            Scope::Full => "full",
            Scope::Roll(_) => "roll",
            Scope::Persons(_) => "facts",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    pub run_id: i64,
    /// Persons in reach (incremental runs; 0 for a full run).
    pub persons: i64,
    /// Findings seen for the first time.
    pub found: i64,
    /// Closed findings whose cause came back.
    pub reopened: i64,
    /// Open findings whose cause is gone.
    pub closed: i64,
    pub elapsed_ms: u64,
}

/// Progress of a run, after each rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDone {
    pub rule_id: &'static str,
    pub done: usize,
    pub total: usize,
    /// Evidence groups (findings, new or not) the rule produced.
    pub findings: i64,
    pub elapsed_ms: u64,
}

/// Runs never overlap: an advisory lock held for the run's transaction.
const RUN_LOCK: i64 = 0x6875_696d_696e_4331; // "huiminC1"

impl Ledger {
    /// Runs every enabled rule over `scope`, calling `progress` after each.
    #[tracing::instrument(skip_all, fields(scope = scope.name()))]
    pub async fn run_checks(
        &self,
        scope: Scope,
        started_by: &str,
        mut progress: impl FnMut(RuleDone),
    ) -> Result<RunOutcome, LedgerError> {
        let started = Instant::now();
        let rules = self.check_rules().await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(RUN_LOCK)
            .execute(&mut *tx)
            .await?;
        // Hash joins and aggregates over the county's payments want room.
        sqlx::query("SET LOCAL work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        // The rules are a dozen large one-off statements: compiling each with JIT costs more
        // than it saves.
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        // Each full-run rule is one pass over the county's payments followed by a few
        // lookups; the default costs keep the pass in one process whenever a lookup
        // follows it (measured at county scale: above_standard 6.1 s serial, 3.3 s with
        // two workers).
        sqlx::query("SET LOCAL parallel_setup_cost = 100")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL parallel_tuple_cost = 0.01")
            .execute(&mut *tx)
            .await?;
        let reach = match &scope {
            Scope::Full => Reach::Full,
            _ => Reach::Scoped,
        };
        if reach == Reach::Full {
            // The plans lean on fresh statistics: a county's first history load or facts
            // mirror leaves none until autovacuum comes by.
            sqlx::query("ANALYZE facts").execute(&mut *tx).await?;
            sqlx::query("ANALYZE payments").execute(&mut *tx).await?;
        }
        let persons = if reach == Reach::Scoped {
            fill_scope(&mut tx, &scope).await?
        } else {
            0
        };
        let roll_id = match scope {
            Scope::Roll(id) => Some(id),
            _ => None,
        };
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO check_runs (scope, roll_id, started_by, persons) VALUES ($1, $2, $3, $4)
             RETURNING id",
        )
        .bind(scope.name())
        .bind(roll_id)
        .bind(started_by)
        .bind(persons)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "CREATE TEMP TABLE found (
                 rule_id text, severity text, dedupe_key text, person_key bytea,
                 household_code text, village_code text, program_code text, period text,
                 amount_fen bigint, evidence jsonb) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;

        let enabled: Vec<&Rule> = rules.enabled().collect();
        let total = enabled.len();
        for (n, rule) in enabled.iter().enumerate() {
            let rule_started = Instant::now();
            let query = rule_query(rule, reach);
            let findings = collect(&mut tx, rule, &query).await.map_err(|e| {
                // The rule's own SQL failed: say how, by SQLSTATE and the server's text
                // (which names the statement's fault, not a row's content).
                let (code, message) = match &e {
                    sqlx::Error::Database(db) => (
                        db.code().map(|c| c.into_owned()).unwrap_or_default(),
                        db.message().to_owned(),
                    ),
                    other => (String::new(), other.to_string()),
                };
                tracing::error!(
                    rule = rule.id.as_str(),
                    code,
                    message,
                    "cross-check rule failed"
                );
                LedgerError::from(e)
            })?;
            let elapsed_ms = rule_started.elapsed().as_millis() as u64;
            tracing::debug!(rule = rule.id.as_str(), findings, elapsed_ms, "rule ran");
            progress(RuleDone {
                rule_id: rule.id.as_str(),
                done: n + 1,
                total,
                findings,
                elapsed_ms,
            });
        }

        // Closed findings whose cause is back, counted before the merge opens them.
        let reopened: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM found n JOIN findings f USING (rule_id, dedupe_key)
             WHERE f.state = 'closed'",
        )
        .fetch_one(&mut *tx)
        .await?;
        let found: i64 = sqlx::query_scalar(
            "WITH merged AS (
                 INSERT INTO findings AS f (rule_id, dedupe_key, severity, person_key, household_code,
                                            village_code, program_code, period, amount_fen, evidence,
                                            first_run, last_run)
                 SELECT rule_id, dedupe_key, severity, person_key, household_code, village_code,
                        program_code, period, amount_fen, evidence, $1, $1
                 FROM found
                 ON CONFLICT (rule_id, dedupe_key) DO UPDATE
                 SET last_run = $1,
                     -- What staff decided on stays as they saw it.
                     evidence = CASE WHEN f.state IN ('open', 'closed') THEN EXCLUDED.evidence ELSE f.evidence END,
                     amount_fen = CASE WHEN f.state IN ('open', 'closed') THEN EXCLUDED.amount_fen ELSE f.amount_fen END,
                     period = CASE WHEN f.state IN ('open', 'closed') THEN EXCLUDED.period ELSE f.period END,
                     severity = EXCLUDED.severity,
                     state = CASE WHEN f.state = 'closed' THEN 'open' ELSE f.state END,
                     closed_at = CASE WHEN f.state = 'closed' THEN NULL ELSE f.closed_at END
                 RETURNING f.first_run = $1 AS new)
             SELECT count(*) FILTER (WHERE new) FROM merged",
        )
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;

        // Open findings of the enabled rules, within reach, that this run did not see.
        let rule_ids: Vec<&str> = enabled.iter().map(|r| r.id.as_str()).collect();
        let within = match reach {
            Reach::Full => "TRUE",
            // Only what the run saw whole: a finding keyed by a household when that
            // household's payments were all in scope, by an account when a scoped payment
            // touched it, a grant always (that rule reads every grant), and a person's
            // when all their payments were.
            Reach::Scoped => {
                "CASE
                   WHEN f.dedupe_key LIKE 'household:%'
                     THEN f.household_code IN (SELECT household_code FROM check_scope_households)
                   WHEN f.dedupe_key LIKE 'bank:%'
                     THEN substr(f.dedupe_key, 6) IN (
                          SELECT encode(q.bank_hash, 'hex') FROM check_scope_payments s
                          JOIN payments q ON q.id = s.id WHERE q.bank_hash IS NOT NULL)
                   WHEN f.dedupe_key LIKE 'grant:%' THEN TRUE
                   ELSE f.person_key IN (SELECT person_key FROM check_scope)
                 END"
            }
        };
        let closed = sqlx::query(&format!(
            "UPDATE findings f SET state = 'closed', closed_at = now()
             WHERE f.state = 'open' AND f.last_run < $1 AND f.rule_id = ANY($2) AND {within}"
        ))
        .bind(run_id)
        .bind(&rule_ids)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;

        if reach == Reach::Full {
            // Everyone whose facts changed before this run began has been checked now.
            sqlx::query("DELETE FROM facts_check_queue WHERE queued_at <= now()")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE check_runs SET finished_at = clock_timestamp(), found = $2, reopened = $3, closed = $4
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(i32::try_from(found).unwrap_or(i32::MAX))
        .bind(i32::try_from(reopened).unwrap_or(i32::MAX))
        .bind(i32::try_from(closed).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let outcome = RunOutcome {
            run_id,
            persons,
            found,
            reopened,
            closed,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        tracing::info!(
            run_id,
            persons,
            found,
            closed,
            elapsed_ms = outcome.elapsed_ms,
            "cross-checks ran"
        );
        self.publish_finding_counts().await;
        Ok(outcome)
    }

    /// The rules in force: the latest stored version, or the built-in defaults.
    pub async fn check_rules(&self) -> Result<RuleSet, LedgerError> {
        let stored: Option<sqlx::types::Json<RuleSet>> =
            sqlx::query_scalar("SELECT document FROM check_rules ORDER BY version DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(match stored {
            Some(rules) => rules.0,
            None => super::rules::default_rules(),
        })
    }
}

/// Fills the scope tables; returns how many persons are in reach.
async fn fill_scope(tx: &mut sqlx::PgConnection, scope: &Scope) -> Result<i64, LedgerError> {
    sqlx::query("CREATE TEMP TABLE check_scope (person_key bytea PRIMARY KEY) ON COMMIT DROP")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE check_scope_households (household_code text PRIMARY KEY) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    match scope {
        Scope::Full => {}
        Scope::Roll(roll_id) => {
            sqlx::query(
                "INSERT INTO check_scope SELECT DISTINCT person_key FROM payments WHERE roll_id = $1",
            )
            .bind(roll_id)
            .execute(&mut *tx)
            .await?;
        }
        Scope::Persons(keys) => {
            sqlx::query(
                "INSERT INTO check_scope SELECT DISTINCT k FROM unnest($1::bytea[]) AS k
                 WHERE length(k) = 32",
            )
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("ANALYZE check_scope").execute(&mut *tx).await?;
    // A cadre's term decides about their relatives' payments too.
    sqlx::query(
        "INSERT INTO check_scope
         SELECT DISTINCT r.person_key FROM facts r
         WHERE r.kind = 'cadre_relative'
           AND r.attrs->>'cadre_key' IN (SELECT encode(person_key, 'hex') FROM check_scope)
         ON CONFLICT DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    // Their households: as paid, and as the register dates membership. Each person's and
    // household's payments are looked up through their index (LATERAL): an INSERT plans
    // without parallel workers, and a join let the planner hash the county's payments
    // (measured: 8.3 s of an 11.4 s incremental run at county scale).
    sqlx::query(
        "INSERT INTO check_scope_households
         SELECT p.household_code FROM check_scope s
         CROSS JOIN LATERAL (SELECT p.household_code FROM payments p
                             WHERE p.person_key = s.person_key OFFSET 0) p
         UNION
         SELECT f.attrs->>'household_code' FROM check_scope s
         JOIN facts f ON f.person_key = s.person_key AND f.kind = 'household_member'
         WHERE f.attrs->>'household_code' IS NOT NULL
         ON CONFLICT DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE TEMP TABLE check_scope_payments (id bigint PRIMARY KEY) ON COMMIT DROP")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO check_scope_payments
         SELECT p.id FROM check_scope s
         CROSS JOIN LATERAL (SELECT p.id FROM payments p WHERE p.person_key = s.person_key OFFSET 0) p
         UNION
         SELECT p.id FROM check_scope_households h
         CROSS JOIN LATERAL (SELECT p.id FROM payments p
                             WHERE p.household_code = h.household_code OFFSET 0) p",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("ANALYZE check_scope_payments")
        .execute(&mut *tx)
        .await?;
    sqlx::query("ANALYZE check_scope").execute(&mut *tx).await?;
    sqlx::query("ANALYZE check_scope_households")
        .execute(&mut *tx)
        .await?;
    let persons: i64 = sqlx::query_scalar("SELECT count(*) FROM check_scope")
        .fetch_one(&mut *tx)
        .await?;
    Ok(persons)
}

/// Runs one rule's query and groups its evidence rows into the run's findings; returns
/// how many it grouped.
async fn collect(
    tx: &mut sqlx::PgConnection,
    rule: &Rule,
    query: &RuleQuery,
) -> Result<i64, sqlx::Error> {
    let sql = format!(
        // CREATE TABLE AS, not INSERT ... SELECT: PostgreSQL plans a query that writes
        // into an existing table without parallel workers, and a full run's rules scan the
        // county's payments (measured: 7.8 s serial, 4.5 s with two workers).
        "CREATE TEMP TABLE found_rule ON COMMIT DROP AS
         SELECT '{rule_id}'::text AS rule_id, '{severity}'::text AS severity, r.dedupe_key,
                (array_agg(p.person_key ORDER BY p.id))[1] AS person_key,
                (array_agg(p.household_code ORDER BY p.id))[1] AS household_code,
                (array_agg(p.village_code ORDER BY p.id))[1] AS village_code,
                (array_agg(p.program_code ORDER BY p.id))[1] AS program_code,
                min(p.period) AS period,
                sum(p.amount_fen)::bigint AS amount_fen,
                jsonb_build_object(
                    'payments', (array_agg(p.id ORDER BY p.id))[1:50],
                    'payment_count', count(*),
                    'periods', (array_agg(p.period ORDER BY p.id))[1:50],
                    'programs', array_agg(DISTINCT p.program_code),
                    'facts', coalesce((array_agg(DISTINCT r.fact_id) FILTER (WHERE r.fact_id IS NOT NULL))[1:20], '{{}}'),
                    'name', (array_agg(p.name_masked ORDER BY p.id))[1],
                    'id_number', (array_agg(p.id_masked ORDER BY p.id))[1],
                    'detail', (array_agg(r.detail ORDER BY p.id))[1]) AS evidence
         FROM (SELECT DISTINCT ON (dedupe_key, payment_id) dedupe_key, payment_id, fact_id, detail
               FROM ({inner}) x ORDER BY dedupe_key, payment_id, fact_id) r
         JOIN payments p ON p.id = r.payment_id
         GROUP BY r.dedupe_key",
        rule_id = rule.id.as_str(),
        severity = rule.severity.as_str(),
        inner = query.sql,
    );
    let mut q: Query<'_, Postgres, PgArguments> = sqlx::query(&sql);
    for arg in &query.args {
        q = match arg {
            Arg::Text(text) => q.bind(text),
            Arg::Texts(list) => q.bind(list),
            Arg::Int(n) => q.bind(n),
            Arg::Json(value) => q.bind(value),
        };
    }
    // Counting every (person, program, period) of the county: streamed in the order of
    // the person and household slot indexes, never hashed (measured on 17.6 million
    // payments: 7 s, against 25 to 42 s for a hash aggregate that spills to disk).
    let streamed = rule.id == super::rules::RuleId::PaidTwice;
    if streamed {
        sqlx::query("SET LOCAL enable_hashagg = off")
            .execute(&mut *tx)
            .await?;
    }
    let grouped = q.execute(&mut *tx).await?.rows_affected() as i64;
    if streamed {
        sqlx::query("SET LOCAL enable_hashagg = DEFAULT")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO found (rule_id, severity, dedupe_key, person_key, household_code, village_code,
                            program_code, period, amount_fen, evidence)
         SELECT * FROM found_rule",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("DROP TABLE found_rule")
        .execute(&mut *tx)
        .await?;
    Ok(grouped)
}
