//! The triage rules in force: the set staff stored, or the built-in one
//! moved to the configured county; and storing an edited set.

use huimin_kit::auth::Caller;

use super::rules::{Rules, default_rules, parse_rules};
use crate::{
    Whistle,
    audit::{self, Actor},
    domain::AuditAction,
    error::WhistleError,
};

impl Whistle {
    /// The triage rules in force: the stored set, or the built-in one.
    pub async fn rules(&self) -> Result<Rules, WhistleError> {
        let stored: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT rules FROM triage_rules WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        match stored {
            Some(json) => parse_rules(&json.to_string()).map_err(|e| {
                WhistleError::internal(anyhow::anyhow!("stored triage rules are invalid: {e}"))
            }),
            None => Ok(default_rules().for_county(&self.county)),
        }
    }

    /// Replaces the triage rules after checking them; recorded in the audit trail.
    pub async fn set_rules(&self, caller: &Caller, json: &str) -> Result<Rules, WhistleError> {
        let rules = parse_rules(json)
            .map_err(|e| WhistleError::invalid("json", format!("研判规则有误：{e}")))?;
        let value: serde_json::Value =
            serde_json::from_str(&rules.to_json()).map_err(|e| WhistleError::internal(e.into()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO triage_rules (id, rules, updated_by) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET rules = EXCLUDED.rules, updated_by = EXCLUDED.updated_by, updated_at = now()",
        )
        .bind(&value)
        .bind(&caller.sub)
        .execute(&mut *tx)
        .await?;
        let actor = Actor::Staff(caller.sub.clone());
        audit::record(
            &mut tx,
            &self.audit.key,
            chrono::Utc::now(),
            &actor,
            AuditAction::TriageRulesUpdated,
            None,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(rules)
    }
}
