//! The mirror of identity's person facts the rules join against: read from identity's
//! `StreamPersonFacts` after the version last applied, kept by fact id (a corrected fact
//! overwrites its row), with the cursor moved in the same transaction as the rows.

use huimin_kit::pii::PersonKey;
use huimin_proto::identity::v1::{PersonFact, StreamPersonFactsRequest};

use crate::{Ledger, LedgerError};

/// Facts written per statement.
const BATCH: usize = 5_000;

/// Beyond this many changed persons a sync asks for a full run instead of listing them
/// (the first sync of a county brings every person).
const PERSONS_LISTED: usize = 100_000;

/// A fact as the mirror keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredFact {
    pub fact_id: i64,
    pub person_key: [u8; 32],
    pub kind: String,
    pub since: chrono::NaiveDate,
    pub until: Option<chrono::NaiveDate>,
    /// Kind-specific attributes as identity names them.
    pub attrs: std::collections::BTreeMap<String, String>,
    pub source: String,
    pub version: i64,
}

impl MirroredFact {
    /// Reads a streamed fact; `None` for one whose key or dates do not parse (logged by
    /// id, never by content).
    pub fn from_wire(fact: PersonFact) -> Option<MirroredFact> {
        let parsed = (|| {
            let person_key = *PersonKey::from_hex(&fact.person_key).ok()?.as_bytes();
            let since = chrono::NaiveDate::parse_from_str(&fact.since, "%Y-%m-%d").ok()?;
            let until = if fact.until.is_empty() {
                None
            } else {
                Some(chrono::NaiveDate::parse_from_str(&fact.until, "%Y-%m-%d").ok()?)
            };
            let mut attrs: std::collections::BTreeMap<String, String> = fact
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !fact.detail.is_empty() && !attrs.contains_key("detail") {
                attrs.insert("detail".to_owned(), fact.detail.clone());
            }
            Some(MirroredFact {
                fact_id: fact.fact_id,
                person_key,
                kind: fact.kind.clone(),
                since,
                until,
                attrs,
                source: fact.source.clone(),
                version: fact.version,
            })
        })();
        if parsed.is_none() {
            tracing::warn!(
                fact_id = fact.fact_id,
                "a streamed fact did not parse; skipped"
            );
        }
        parsed
    }
}

/// What a sync brought.
#[derive(Debug, Default)]
pub struct Synced {
    pub facts: i64,
    /// Persons whose facts changed, for an incremental run; `None` when too many changed
    /// to list, and a full run is the better answer.
    pub persons: Option<Vec<Vec<u8>>>,
}

impl Ledger {
    /// The version of identity's stream the mirror has applied.
    pub async fn facts_cursor(&self) -> Result<i64, LedgerError> {
        Ok(sqlx::query_scalar("SELECT version FROM facts_cursor")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Writes `facts` into the mirror and moves the cursor to the highest version among
    /// them, in one transaction.
    pub async fn apply_facts(&self, facts: &[MirroredFact]) -> Result<(), LedgerError> {
        let Some(top) = facts.iter().map(|f| f.version).max() else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await?;
        for chunk in facts.chunks(BATCH) {
            let ids: Vec<i64> = chunk.iter().map(|f| f.fact_id).collect();
            let keys: Vec<&[u8]> = chunk.iter().map(|f| f.person_key.as_slice()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|f| f.kind.as_str()).collect();
            let since: Vec<chrono::NaiveDate> = chunk.iter().map(|f| f.since).collect();
            let until: Vec<Option<chrono::NaiveDate>> = chunk.iter().map(|f| f.until).collect();
            let attrs: Vec<serde_json::Value> = chunk
                .iter()
                .map(|f| serde_json::to_value(&f.attrs).expect("a string map serialises"))
                .collect();
            let sources: Vec<&str> = chunk.iter().map(|f| f.source.as_str()).collect();
            let versions: Vec<i64> = chunk.iter().map(|f| f.version).collect();
            sqlx::query(
                "INSERT INTO facts (fact_id, person_key, kind, since, until, attrs, source, version)
                 SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::date[], $5::date[],
                                      $6::jsonb[], $7::text[], $8::bigint[])
                 ON CONFLICT (fact_id) DO UPDATE
                 SET person_key = EXCLUDED.person_key, kind = EXCLUDED.kind, since = EXCLUDED.since,
                     until = EXCLUDED.until, attrs = EXCLUDED.attrs, source = EXCLUDED.source,
                     version = EXCLUDED.version
                 WHERE facts.version < EXCLUDED.version",
            )
            .bind(&ids)
            .bind(&keys)
            .bind(&kinds)
            .bind(&since)
            .bind(&until)
            .bind(&attrs)
            .bind(&sources)
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        }
        // Their persons wait for a run, durably, with the facts.
        let keys: Vec<&[u8]> = facts.iter().map(|f| f.person_key.as_slice()).collect();
        sqlx::query(
            "INSERT INTO facts_check_queue (person_key)
             SELECT DISTINCT k FROM unnest($1::bytea[]) AS k
             ON CONFLICT (person_key) DO UPDATE SET queued_at = now()",
        )
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE facts_cursor SET version = greatest(version, $1)")
            .bind(top)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads identity's facts after the mirror's cursor and applies them, batch by batch.
    pub async fn sync_facts(&self) -> Result<Synced, LedgerError> {
        let after = self.facts_cursor().await?;
        let mut identity = self.identity.clone();
        let mut stream = identity
            .stream_person_facts(StreamPersonFactsRequest {
                after_version: after,
            })
            .await
            .map_err(|status| LedgerError::peer_unavailable("identity", status))?
            .into_inner();
        let mut synced = Synced::default();
        let mut persons = Some(std::collections::HashSet::new());
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let next = stream
                .message()
                .await
                .map_err(|status| LedgerError::peer_unavailable("identity", status))?;
            let done = next.is_none();
            if let Some(fact) = next
                && let Some(fact) = MirroredFact::from_wire(fact)
            {
                if let Some(set) = &mut persons {
                    set.insert(fact.person_key.to_vec());
                    if set.len() > PERSONS_LISTED {
                        persons = None;
                    }
                }
                batch.push(fact);
            }
            if batch.len() >= BATCH || (done && !batch.is_empty()) {
                self.apply_facts(&batch).await?;
                synced.facts += batch.len() as i64;
                batch.clear();
            }
            if done {
                break;
            }
        }
        synced.persons = persons.map(|set| set.into_iter().collect());
        if synced.facts > 0 {
            tracing::info!(facts = synced.facts, "person facts mirrored from identity");
        }
        Ok(synced)
    }
}
