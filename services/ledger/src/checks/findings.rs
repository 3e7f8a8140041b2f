//! Findings as staff see and act on them: listed and filtered, dismissed with a reason,
//! opened as a whistle report; the rules read and changed. Every read and action is
//! written to `check_audit` in the same transaction as what it records.

use huimin_kit::auth::{Caller, Role};
use huimin_proto::whistle::v1::{Subject as ReportSubject, SubmitReportRequest};

use super::rules::{RuleId, RuleSet, Severity, parse_rules};
use crate::{Ledger, LedgerError};

/// The states a finding can be in.
pub const STATES: [&str; 4] = ["open", "closed", "dismissed", "reported"];

/// A finding as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FindingRow {
    pub id: i64,
    pub rule_id: String,
    pub severity: String,
    pub state: String,
    pub person_key: Vec<u8>,
    pub household_code: String,
    pub village_code: String,
    pub town_code: String,
    pub program_code: String,
    pub period: String,
    pub amount_fen: i64,
    pub evidence: sqlx::types::Json<serde_json::Value>,
    pub found_at: chrono::DateTime<chrono::Utc>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub report_number: Option<String>,
}

impl FindingRow {
    pub fn evidence_str(&self, key: &str) -> String {
        self.evidence
            .0
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub rule_id: Option<String>,
    pub town_code: Option<String>,
    pub village_code: Option<String>,
    pub program_code: Option<String>,
    pub severity: Option<String>,
    pub state: Option<String>,
}

/// A page of findings and the counts per rule of everything the filter matches.
#[derive(Debug)]
pub struct FindingsPage {
    pub findings: Vec<FindingRow>,
    pub next_page_token: String,
    pub counts: Vec<(String, i64)>,
}

const COLUMNS: &str = "id, rule_id, severity, state, person_key, household_code, village_code, town_code,
     program_code, period, amount_fen, evidence, found_at, closed_at, decided_by, reason, report_number";

const FILTER: &str = "($1::text IS NULL OR rule_id = $1) AND ($2::text IS NULL OR town_code = $2)
     AND ($3::text IS NULL OR village_code = $3) AND ($4::text IS NULL OR program_code = $4)
     AND ($5::text IS NULL OR severity = $5) AND ($6::text IS NULL OR state = $6)
     AND ($7::text[] IS NULL OR program_code = ANY($7))";

const PAGE_KIND: &str = "finding";

impl Ledger {
    /// Findings matching `filter` that `caller` may see, newest first: a town officer's
    /// own town, a department officer's own programs.
    pub async fn list_findings(
        &self,
        caller: &Caller,
        mut filter: FindingFilter,
        page_token: &str,
        page_size: u32,
    ) -> Result<FindingsPage, LedgerError> {
        if let Some(rule) = &filter.rule_id
            && RuleId::parse(rule).is_none()
        {
            return Err(LedgerError::invalid("rule_id", "没有这条比对规则"));
        }
        if let Some(severity) = &filter.severity
            && Severity::parse(severity).is_none()
        {
            return Err(LedgerError::invalid(
                "severity",
                "严重程度应为 high、medium 或 low",
            ));
        }
        if let Some(state) = &filter.state
            && !STATES.contains(&state.as_str())
        {
            return Err(LedgerError::invalid(
                "state",
                "状态应为 open、closed、dismissed 或 reported",
            ));
        }
        match caller.role {
            Role::Town => match (&filter.town_code, &caller.scope) {
                (Some(town), _) if !caller.covers_town(town) => {
                    return Err(LedgerError::forbidden("只能查看本乡镇的比对结果"));
                }
                (_, Some(scope)) => filter.town_code = Some(scope.clone()),
                (_, None) => return Err(LedgerError::forbidden("账号没有所属乡镇")),
            },
            Role::Admin | Role::Inspector | Role::Auditor | Role::Department => {}
            _ => return Err(LedgerError::forbidden("无权查看比对结果")),
        }
        let programs: Option<Vec<String>> = match (caller.role, caller.scope.as_deref()) {
            (Role::Department, Some(department)) => Some(
                self.programs()
                    .await?
                    .into_values()
                    .filter(|p| p.department == department)
                    .map(|p| p.code)
                    .collect(),
            ),
            (Role::Department, None) => return Err(LedgerError::forbidden("账号没有所属部门")),
            _ => None,
        };
        let after = huimin_kit::page::decode(PAGE_KIND, page_token)
            .ok_or_else(|| LedgerError::invalid("page_token", "分页标记无效"))?;
        let size = huimin_kit::page::size(page_size, 50, 500);

        let mut tx = self.pool.begin().await?;
        let findings: Vec<FindingRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM findings WHERE {FILTER} AND ($8::bigint IS NULL OR id < $8)
             ORDER BY id DESC LIMIT $9"
        ))
        .bind(&filter.rule_id)
        .bind(&filter.town_code)
        .bind(&filter.village_code)
        .bind(&filter.program_code)
        .bind(&filter.severity)
        .bind(&filter.state)
        .bind(&programs)
        .bind(after)
        .bind(i64::from(size) + 1)
        .fetch_all(&mut *tx)
        .await?;
        let counts: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT rule_id, count(*) FROM findings WHERE {FILTER} GROUP BY rule_id ORDER BY rule_id"
        ))
        .bind(&filter.rule_id)
        .bind(&filter.town_code)
        .bind(&filter.village_code)
        .bind(&filter.program_code)
        .bind(&filter.severity)
        .bind(&filter.state)
        .bind(&programs)
        .fetch_all(&mut *tx)
        .await?;
        let mut findings = findings;
        let next_page_token = if findings.len() > size as usize {
            findings.truncate(size as usize);
            huimin_kit::page::encode(PAGE_KIND, findings.last().map_or(0, |f| f.id))
        } else {
            String::new()
        };
        let shown: Vec<i64> = findings.iter().map(|f| f.id).collect();
        audit(
            &mut tx,
            caller,
            "list_findings",
            None,
            serde_json::json!({
                "filter": {
                    "rule_id": filter.rule_id, "town_code": filter.town_code,
                    "village_code": filter.village_code, "program_code": filter.program_code,
                    "severity": filter.severity, "state": filter.state,
                },
                "shown": shown,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(FindingsPage {
            findings,
            next_page_token,
            counts,
        })
    }

    /// Closes an open finding as not a problem; the next runs leave it so.
    pub async fn dismiss_finding(
        &self,
        caller: &Caller,
        id: i64,
        reason: &str,
    ) -> Result<FindingRow, LedgerError> {
        let reason = reason.trim();
        if reason.chars().count() < 2 || reason.chars().count() > 500 {
            return Err(LedgerError::invalid(
                "reason",
                "请填写排除理由（2到500个字）",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let row = lock_open(&mut tx, id).await?;
        let row: FindingRow = sqlx::query_as(&format!(
            "UPDATE findings SET state = 'dismissed', decided_by = $2, decided_at = now(), reason = $3
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(row.id)
        .bind(&caller.sub)
        .bind(reason)
        .fetch_one(&mut *tx)
        .await?;
        audit(
            &mut tx,
            caller,
            "dismiss_finding",
            Some(id),
            serde_json::json!({ "reason": reason }),
        )
        .await?;
        tx.commit().await?;
        self.publish_finding_counts().await;
        Ok(row)
    }

    /// Files an open finding with whistle as a report of source "system", its evidence
    /// attached, and records the report number on it.
    pub async fn report_finding(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<FindingRow, LedgerError> {
        let rules = self.check_rules().await?;
        // The finding stays locked while whistle files it: a second inspector, a dismissal
        // or a run closing it waits, then finds it decided. One row, one call of a few
        // seconds at most (whistle's peer timeout).
        let mut tx = self.pool.begin().await?;
        let row = lock_open(&mut tx, id).await?;
        let rule_name = RuleId::parse(&row.rule_id)
            .and_then(|id| rules.rules.iter().find(|r| r.id == id))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| row.rule_id.clone());
        let evidence = &row.evidence.0;
        let list = |key: &str, max: usize| -> String {
            let items: Vec<String> = evidence
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .take(max)
                        .map(|v| v.to_string().replace('"', ""))
                        .collect()
                })
                .unwrap_or_default();
            items.join("、")
        };
        let detail = evidence
            .get("detail")
            .map(|d| d.to_string())
            .unwrap_or_default();
        let mut text = format!(
            "【大数据比对线索】{rule_name}\n对象：{} {}（户 {}，村 {}）\n项目：{}，期间：{}，涉及金额：{}元\n\
             涉及发放记录{}笔：{}\n涉及期间：{}\n比对所用资料编号：{}\n比对细节：{}\n（线索编号 {}，由 {} 转为举报件）",
            row.evidence_str("name"),
            row.evidence_str("id_number"),
            row.household_code,
            row.village_code,
            row.program_code,
            row.period,
            crate::domain::Fen::from_fen(row.amount_fen),
            evidence
                .get("payment_count")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            list("payments", 20),
            list("periods", 20),
            list("facts", 10),
            detail.chars().take(500).collect::<String>(),
            row.id,
            caller.sub,
        );
        // whistle takes at most 5,000 characters of text.
        if text.chars().count() > 4_900 {
            text = text.chars().take(4_900).collect();
        }
        let mut whistle = self
            .whistle
            .clone()
            .ok_or_else(|| LedgerError::internal(anyhow::anyhow!("whistle is not configured")))?;
        let receipt = whistle
            .submit_report(SubmitReportRequest {
                text,
                category: String::new(),
                subject: Some(ReportSubject {
                    person_key: hex::encode(&row.person_key),
                    village_code: row.village_code.clone(),
                    program_code: row.program_code.clone(),
                    ..Default::default()
                }),
                photos: Vec::new(),
                anonymous: false,
                openid: String::new(),
            })
            .await
            .map_err(|status| LedgerError::peer_unavailable("whistle", status))?
            .into_inner();
        let row: FindingRow = sqlx::query_as(&format!(
            "UPDATE findings SET state = 'reported', decided_by = $2, decided_at = now(),
                                 report_number = $3
             WHERE id = $1 AND state = 'open' RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(&caller.sub)
        .bind(&receipt.report_number)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| LedgerError::invalid("finding_id", "该线索已被他人处理"))?;
        audit(
            &mut tx,
            caller,
            "report_finding",
            Some(id),
            serde_json::json!({ "report_number": receipt.report_number }),
        )
        .await?;
        tx.commit().await?;
        self.publish_finding_counts().await;
        Ok(row)
    }

    /// The rules in force as JSON, and their version (0: the built-in defaults).
    pub async fn get_check_rules(&self, caller: &Caller) -> Result<(String, i64), LedgerError> {
        let stored: Option<(i64, sqlx::types::Json<RuleSet>)> = sqlx::query_as(
            "SELECT version, document FROM check_rules ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let (version, rules) = match stored {
            Some((version, rules)) => (version, rules.0),
            None => (0, super::rules::default_rules()),
        };
        let mut conn = self.pool.acquire().await?;
        audit(
            &mut conn,
            caller,
            "get_check_rules",
            None,
            serde_json::json!({ "version": version }),
        )
        .await?;
        Ok((rules.to_json(), version))
    }

    /// Validates and stores a new version of the rules.
    pub async fn set_check_rules(
        &self,
        caller: &Caller,
        json: &str,
    ) -> Result<(String, i64), LedgerError> {
        let programs = self.programs().await?;
        let rules =
            parse_rules(json, Some(&programs)).map_err(|e| LedgerError::invalid("json", e.0))?;
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO check_rules (document, changed_by) VALUES ($1, $2) RETURNING version",
        )
        .bind(sqlx::types::Json(&rules))
        .bind(&caller.sub)
        .fetch_one(&mut *tx)
        .await?;
        audit(
            &mut tx,
            caller,
            "set_check_rules",
            None,
            serde_json::json!({ "version": version }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, "cross-check rules changed");
        Ok((rules.to_json(), version))
    }

    /// Open findings per rule, by rule id.
    pub async fn open_findings_by_rule(&self) -> Result<Vec<(String, i64)>, LedgerError> {
        Ok(sqlx::query_as(
            "SELECT rule_id, count(*) FROM findings WHERE state = 'open' GROUP BY rule_id ORDER BY rule_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets the `findings_open{rule, town}` gauges from the table (a failure only logs).
    pub async fn publish_finding_counts(&self) {
        let counts: Result<Vec<(String, String, i64)>, _> = sqlx::query_as(
            "SELECT rule_id, town_code, count(*) FROM findings WHERE state = 'open'
             GROUP BY rule_id, town_code",
        )
        .fetch_all(&self.pool)
        .await;
        match counts {
            Ok(counts) => {
                let mut seen = self.published_counts.lock().expect("not poisoned");
                let now: std::collections::HashSet<(String, String)> = counts
                    .iter()
                    .map(|(r, t, _)| (r.clone(), t.clone()))
                    .collect();
                // A rule and town with nothing open any more reads 0, not its last value.
                for (rule, town) in seen.difference(&now) {
                    metrics::gauge!("findings_open", "rule" => rule.clone(), "town" => town.clone())
                        .set(0.0);
                }
                for (rule, town, count) in &counts {
                    metrics::gauge!("findings_open", "rule" => rule.clone(), "town" => town.clone())
                        .set(*count as f64);
                }
                seen.extend(now);
            }
            Err(error) => tracing::warn!(%error, "counting open findings failed"),
        }
    }
}

/// The finding, which must be open (or the action is refused).
async fn lock_open(conn: &mut sqlx::PgConnection, id: i64) -> Result<FindingRow, LedgerError> {
    let row: Option<FindingRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM findings WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let row = row.ok_or_else(|| LedgerError::not_found("比对线索"))?;
    if row.state != "open" {
        return Err(LedgerError::invalid(
            "finding_id",
            "只有待核实的线索可以排除或转为举报",
        ));
    }
    Ok(row)
}

/// One line of the append-only check audit.
async fn audit(
    conn: &mut sqlx::PgConnection,
    caller: &Caller,
    action: &str,
    finding_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO check_audit (actor, role, action, finding_id, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&caller.sub)
    .bind(caller.role.as_str())
    .bind(action)
    .bind(finding_id)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a staff-started run in the audit before it starts, so a run that fails is on
/// record too (background runs are recorded in `check_runs` only).
pub async fn audit_run(ledger: &Ledger, caller: &Caller) -> Result<(), LedgerError> {
    let mut conn = ledger.pool.acquire().await?;
    audit(
        &mut conn,
        caller,
        "run_checks",
        None,
        serde_json::json!({ "scope": "full" }),
    )
    .await
}
