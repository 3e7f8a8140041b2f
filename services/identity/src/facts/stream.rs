//! Reading person facts in version order after a version: what `StreamPersonFacts`
//! sends over gRPC and what `huimin seed` feeds ledger's mirror with in-process.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use huimin_kit::pii::PersonKey;

use crate::{Identity, IdentityError};

/// One person fact as the stream carries it: a fact new or changed at `version`.
///
/// `attrs` holds the kind's attributes under fixed keys (docs/architecture.md,
/// "Reference datasets"): `employer`; `village_code`, `post`; `cadre_key`, `relation`;
/// `plate`, `vehicle_type`; `company`, `credit_code`, `role`; `location`,
/// `area_centi_m2`; `destination`; `household_code`, `relation`; `source_text`.
/// Names and ID numbers are never among them: persons are their `person_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedFact {
    /// The fact's id: the same across its versions.
    pub fact_id: i64,
    pub person_key: PersonKey,
    /// `deceased`, ..., `moved_out`, `household_member` or `born`.
    pub kind: String,
    pub since: NaiveDate,
    /// `None` while the fact holds.
    pub until: Option<NaiveDate>,
    pub detail: String,
    /// The stream position; a follower resumes after the last it saw.
    pub version: i64,
    /// The department the fact came from.
    pub source: String,
    pub attrs: BTreeMap<String, String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    person_key: Vec<u8>,
    kind: String,
    since: NaiveDate,
    until: Option<NaiveDate>,
    detail: String,
    version: i64,
    source: String,
    attrs: String,
}

impl Identity {
    /// At most `limit` facts whose version is above `after_version`, in version order.
    /// Resumable: pass the last version seen. Only committed facts are seen, and since
    /// writers serialise on [`super::WRITE_LOCK`], none later commits below them.
    pub async fn facts_after(
        &self,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<StreamedFact>, IdentityError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT f.id, p.person_key, f.kind, f.since, f.until, f.detail, f.version, f.source,
                    f.attrs::text AS attrs
             FROM person_facts f JOIN persons p ON p.id = f.person_id
             WHERE f.version > $1 ORDER BY f.version LIMIT $2",
        )
        .bind(after_version)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let person_key = PersonKey::from_slice(&row.person_key).ok_or_else(|| {
                    IdentityError::internal(anyhow::anyhow!("person {} has a bad key", row.id))
                })?;
                let attrs: BTreeMap<String, String> =
                    serde_json::from_str(&row.attrs).map_err(|e| {
                        IdentityError::internal(anyhow::anyhow!(
                            "fact {} attrs are not a string map: {e}",
                            row.id
                        ))
                    })?;
                Ok(StreamedFact {
                    fact_id: row.id,
                    person_key,
                    kind: row.kind,
                    since: row.since,
                    until: row.until,
                    detail: row.detail,
                    version: row.version,
                    source: row.source,
                    attrs,
                })
            })
            .collect()
    }
}
