//! Checking ID number and name claims (rows of a payment roll) against the
//! register in bulk, for services that must not hold ID numbers themselves.

use std::collections::HashMap;

use huimin_kit::pii::{IdNumber, PersonKey};

use crate::{Identity, IdentityError};

/// At most this many claims per call.
pub const MAX_CLAIMS: usize = 10_000;

/// The register's answer to one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Match(Registered),
    InvalidIdNumber,
    Unknown,
    NameMismatch(Registered),
}

/// What the register holds about a person, minus the clear ID number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub person_key: PersonKey,
    pub household_code: String,
    pub village_code: String,
    pub id_number_masked: String,
    pub deceased: bool,
}

#[derive(sqlx::FromRow)]
struct Row {
    person_key: Vec<u8>,
    name: String,
    household_code: String,
    village_code: String,
    id_number_masked: String,
    deceased: bool,
}

impl Identity {
    /// Answers each `(id_number, name)` claim, in order.
    #[tracing::instrument(skip_all, fields(claims = claims.len()))]
    pub async fn check_persons(
        &self,
        claims: &[(String, String)],
    ) -> Result<Vec<Check>, IdentityError> {
        if claims.len() > MAX_CLAIMS {
            return Err(IdentityError::invalid("claims", "每次最多核验10000人"));
        }
        let keys: Vec<Option<PersonKey>> = claims
            .iter()
            .map(|(id, _)| {
                IdNumber::parse(id)
                    .ok()
                    .map(|id| self.pii.keyer.key_of(&id))
            })
            .collect();
        let lookup: Vec<Vec<u8>> = keys
            .iter()
            .flatten()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT p.person_key, p.name, p.household_code, p.village_code, p.id_number_masked,
                    EXISTS (SELECT 1 FROM person_facts f WHERE f.person_id = p.id AND f.kind = 'deceased') AS deceased
             FROM persons p WHERE p.person_key = ANY($1)",
        )
        .bind(lookup)
        .fetch_all(&self.pool)
        .await?;
        let by_key: HashMap<Vec<u8>, Row> = rows
            .into_iter()
            .map(|r| (r.person_key.clone(), r))
            .collect();
        Ok(claims
            .iter()
            .zip(keys)
            .map(|((_, name), key)| {
                let Some(key) = key else {
                    return Check::InvalidIdNumber;
                };
                let Some(row) = by_key.get(key.as_bytes().as_slice()) else {
                    return Check::Unknown;
                };
                let registered = Registered {
                    person_key: key,
                    household_code: row.household_code.clone(),
                    village_code: row.village_code.clone(),
                    id_number_masked: row.id_number_masked.clone(),
                    deceased: row.deceased,
                };
                if row.name == name.trim() {
                    Check::Match(registered)
                } else {
                    Check::NameMismatch(registered)
                }
            })
            .collect())
    }
}
