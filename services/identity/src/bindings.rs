//! WeChat bindings: an openid proves who it is by ID number and name, then
//! may see that person's (and its household's) subsidies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use huimin_kit::pii::{IdNumber, PersonKey};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

use crate::{Identity, IdentityError};

/// How many persons one openid may bind (a family checking on its members).
pub const MAX_BINDINGS: i64 = 6;
/// Failed attempts allowed per openid within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(3600);
/// Failed attempts allowed per person (from any openid) within
/// [`FAILURE_WINDOW`]: above one openid's, so a family's typos do not lock a
/// member out, low enough that a thousand openids get ten guesses an hour.
pub const MAX_PERSON_FAILURES: i64 = 10;
/// Short, because ledger authorizes citizen lookups from this answer.
const RESOLVE_TTL: Duration = Duration::from_secs(60);

pub use huimin_kit::openid::OpenId;

impl From<huimin_kit::openid::OpenIdError> for IdentityError {
    fn from(_: huimin_kit::openid::OpenIdError) -> Self {
        IdentityError::invalid("openid", huimin_kit::openid::OpenIdError::MESSAGE_ZH)
    }
}

/// A person bound to an openid, as its holder sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundPerson {
    pub person_key: String,
    pub name: String,
    pub id_number_masked: String,
    pub household_code: String,
    pub village_code: String,
    pub relation: String,
    pub bound_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct BoundRow {
    person_key: Vec<u8>,
    name: String,
    id_number_masked: String,
    household_code: String,
    village_code: String,
    relation: String,
    bound_at: DateTime<Utc>,
}

impl From<BoundRow> for BoundPerson {
    fn from(row: BoundRow) -> Self {
        let key = PersonKey::from_slice(&row.person_key)
            .map(|k| k.to_hex())
            .unwrap_or_default();
        Self {
            person_key: key,
            name: row.name,
            id_number_masked: row.id_number_masked,
            household_code: row.household_code,
            village_code: row.village_code,
            relation: row.relation,
            bound_at: row.bound_at,
        }
    }
}

/// Whose records a citizen asks to read.
pub enum Lookup {
    Person(PersonKey),
    Household(String),
}

/// The generation counter under which other services may keep answers about
/// `openid`'s bindings: moved on by every bind and unbind before it returns.
pub fn bindings_generation(openid: &OpenId) -> String {
    huimin_kit::cache::openid_bindings_generation(openid.as_str())
}

fn cache_key(openid: &OpenId) -> String {
    format!("identity:openid:{}", openid.as_str())
}

impl Identity {
    /// Binds `openid` to the person with this ID number, if the name matches.
    /// Returns the person and how many more this openid may bind.
    ///
    /// Every limit is checked before the name, so no answer tells a guess
    /// was right before the guess has counted: the openid's failures, the
    /// person's failures (from any openid), and the openid's binding limit.
    #[tracing::instrument(skip_all)]
    pub async fn bind(
        &self,
        openid: &OpenId,
        id_number: &str,
        name: &str,
    ) -> Result<(BoundPerson, u32), IdentityError> {
        let id_number = IdNumber::parse(id_number);
        let key = id_number.as_ref().ok().map(|id| self.pii.keyer.key_of(id));
        // One transaction per attempt, serialized per openid and per person
        // (always in that order, so two attempts never deadlock), so parallel
        // attempts can race past neither the failure limits nor the binding limit.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(openid.as_str())
            .execute(&mut *tx)
            .await?;
        if let Some(key) = &key {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('bind-person:' || $1, 0))")
                .bind(key.to_hex())
                .execute(&mut *tx)
                .await?;
        }
        check_bind_limits(&mut tx, openid, key.as_ref()).await?;
        let person: Option<(i64, String)> = match &key {
            Some(key) => {
                sqlx::query_as("SELECT id, name FROM persons WHERE person_key = $1")
                    .bind(key.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let matched = match (id_number, person) {
            (Err(error), _) => Err(IdentityError::invalid("id_number", error.message_zh())),
            (Ok(_), Some((id, registered))) if registered == name.trim() => Ok(id),
            // One answer for "unknown" and "wrong name", so the registry can't be probed.
            (Ok(_), _) => Err(IdentityError::invalid(
                "name",
                "身份证号与姓名不匹配，或尚未登记，请核对后重试",
            )),
        };
        let person_id = match matched {
            Ok(id) => id,
            Err(error) => {
                sqlx::query("INSERT INTO bind_failures (openid, person_key) VALUES ($1, $2)")
                    .bind(openid.as_str())
                    .bind(key.map(|k| k.as_bytes().to_vec()))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!("bind refused: id number and name do not match a registered person");
                return Err(error);
            }
        };
        let (count, already) = bindings_of(&mut tx, openid, person_id).await?;
        if !already {
            sqlx::query("INSERT INTO wechat_bindings (openid, person_id) VALUES ($1, $2)")
                .bind(openid.as_str())
                .bind(person_id)
                .execute(&mut *tx)
                .await?;
        }
        let bound: BoundRow = sqlx::query_as(&format!(
            "{BOUND_SELECT} WHERE b.openid = $1 AND b.person_id = $2"
        ))
        .bind(openid.as_str())
        .bind(person_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        // Unconfirmed, a lookup elsewhere may be refused from a kept answer
        // for a few seconds more: slower, not wrong (refusals are not kept).
        let _ = self.forget_resolved(openid).await;
        let total = if already { count } else { count + 1 };
        tracing::info!(already, "openid bound");
        Ok((
            bound.into(),
            u32::try_from(MAX_BINDINGS - total).unwrap_or(0),
        ))
    }

    /// Drops the cached answer for `openid` after a change, twice: once now,
    /// and once a moment later to catch a lookup that read the database
    /// before the change and filled the cache after the first delete. If
    /// Redis refuses, it keeps trying for as long as an entry could live.
    ///
    /// Returns whether Redis confirmed the move of the openid's binding
    /// generation: until it has, another replica may still serve an answer
    /// kept under the old one (for at most `huimin_kit::cache::BINDING_ANSWER_TTL`).
    async fn forget_resolved(&self, openid: &OpenId) -> bool {
        // Answers other services keep about this openid are gone before we return.
        let confirmed = self
            .cache
            .bump_subject_generation(
                &bindings_generation(openid),
                huimin_kit::cache::OPENID_GENERATION_LIFETIME,
            )
            .await;
        let key = cache_key(openid);
        let generation = bindings_generation(openid);
        self.cache.invalidate_current(&generation, &key).await;
        let cache = self.cache.clone();
        tokio::spawn(async move {
            for _ in 0..RESOLVE_TTL.as_secs() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if cache.invalidate_current(&generation, &key).await {
                    return;
                }
            }
            tracing::warn!("cached binding could not be invalidated; it expires by TTL");
        });
        confirmed
    }

    /// The persons bound to `openid`, from the cache when it has them.
    #[tracing::instrument(skip_all)]
    pub async fn resolve(&self, openid: &OpenId) -> Result<Vec<BoundPerson>, IdentityError> {
        let key = cache_key(openid);
        // Kept under the openid's binding generation, like the answers other services keep:
        // after a bind or unbind moves it on, an answer read from the database before the
        // change (and written back late) is a miss, so nothing stale is handed on to a
        // caller that keeps it under the new generation (the gateway does).
        let generation = bindings_generation(openid);
        let kept = self
            .cache
            .get_current::<Vec<BoundPerson>>(&generation, &key)
            .await;
        if let huimin_kit::cache::Current::Hit(persons) = kept {
            return non_empty(persons);
        }
        let rows: Vec<BoundRow> = sqlx::query_as(&format!(
            "{BOUND_SELECT} WHERE b.openid = $1 ORDER BY b.bound_at, p.id"
        ))
        .bind(openid.as_str())
        .fetch_all(&self.pool)
        .await?;
        let persons: Vec<BoundPerson> = rows.into_iter().map(Into::into).collect();
        if let huimin_kit::cache::Current::Miss(under) = kept {
            self.cache
                .put_current(&generation, &key, under, &persons, RESOLVE_TTL)
                .await;
        }
        non_empty(persons)
    }

    /// Whether `openid` may read `subject`: a person it is bound to or one
    /// in the household of a person it is bound to; a household of one of
    /// its bound persons. From the register, so an unbinding counts at once.
    #[tracing::instrument(skip_all)]
    pub async fn may_read(&self, openid: &OpenId, subject: &Lookup) -> Result<bool, IdentityError> {
        let allowed = match subject {
            Lookup::Person(key) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (
                        SELECT 1 FROM wechat_bindings b
                        JOIN persons bound ON bound.id = b.person_id
                        JOIN persons asked ON asked.person_key = $2
                        WHERE b.openid = $1
                          AND (asked.id = bound.id OR asked.household_code = bound.household_code))",
                )
                .bind(openid.as_str())
                .bind(key.as_bytes().as_slice())
                .fetch_one(&self.pool)
                .await?
            }
            Lookup::Household(code) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (
                        SELECT 1 FROM wechat_bindings b
                        JOIN persons bound ON bound.id = b.person_id
                        WHERE b.openid = $1 AND bound.household_code = $2)",
                )
                .bind(openid.as_str())
                .bind(code)
                .fetch_one(&self.pool)
                .await?
            }
        };
        Ok(allowed)
    }

    /// Removes one binding, or all of the openid's when `person_key` is `None`.
    pub async fn unbind(
        &self,
        openid: &OpenId,
        person_key: Option<&PersonKey>,
    ) -> Result<u64, IdentityError> {
        let removed = sqlx::query(
            "DELETE FROM wechat_bindings b USING persons p
             WHERE b.person_id = p.id AND b.openid = $1 AND ($2::bytea IS NULL OR p.person_key = $2)",
        )
        .bind(openid.as_str())
        .bind(person_key.map(|k| k.as_bytes().to_vec()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        // An unbinding must count everywhere at once: if another replica may
        // still allow reads from a kept answer, say so, so the caller retries
        // (the delete is done; repeating it is harmless).
        if !self.forget_resolved(openid).await {
            tracing::warn!("unbinding not yet seen by every replica; asking the caller to retry");
            return Err(IdentityError::peer_unavailable(
                "redis",
                tonic::Status::unavailable("binding generation could not be moved on"),
            ));
        }
        Ok(removed)
    }
}

/// Refuses an attempt, before its name is looked at, if the openid or the
/// person has failed too often, or if the openid is at its binding limit and
/// has not bound this person already (which it knows, so that tells nothing).
async fn check_bind_limits(
    tx: &mut Transaction<'_, Postgres>,
    openid: &OpenId,
    key: Option<&PersonKey>,
) -> Result<(), IdentityError> {
    let window = FAILURE_WINDOW.as_secs_f64();
    let (openid_failures, person_failures, bound, already): (i64, i64, i64, bool) = sqlx::query_as(
        "SELECT
                (SELECT count(*) FROM bind_failures
                 WHERE openid = $1 AND failed_at > now() - make_interval(secs => $3)),
                (SELECT count(*) FROM bind_failures
                 WHERE $2::bytea IS NOT NULL AND person_key = $2
                   AND failed_at > now() - make_interval(secs => $3)),
                (SELECT count(*) FROM wechat_bindings WHERE openid = $1),
                EXISTS (SELECT 1 FROM wechat_bindings b JOIN persons p ON p.id = b.person_id
                        WHERE b.openid = $1 AND p.person_key = $2)",
    )
    .bind(openid.as_str())
    .bind(key.map(|k| k.as_bytes().to_vec()))
    .bind(window)
    .fetch_one(&mut **tx)
    .await?;
    if openid_failures >= MAX_FAILURES {
        tracing::info!("bind refused: openid locked out");
        return Err(IdentityError::Throttled);
    }
    if person_failures >= MAX_PERSON_FAILURES {
        tracing::info!("bind refused: person locked out");
        return Err(IdentityError::Throttled);
    }
    if bound >= MAX_BINDINGS && !already {
        return Err(IdentityError::BindingLimit);
    }
    Ok(())
}

/// How many persons `openid` has bound, and whether `person_id` is one.
async fn bindings_of(
    tx: &mut Transaction<'_, Postgres>,
    openid: &OpenId,
    person_id: i64,
) -> Result<(i64, bool), IdentityError> {
    Ok(sqlx::query_as(
        "SELECT count(*), coalesce(bool_or(person_id = $2), false) FROM wechat_bindings WHERE openid = $1",
    )
    .bind(openid.as_str())
    .bind(person_id)
    .fetch_one(&mut **tx)
    .await?)
}

const BOUND_SELECT: &str =
    "SELECT p.person_key, p.name, p.id_number_masked, p.household_code, p.village_code,
        p.relation, b.bound_at
    FROM wechat_bindings b JOIN persons p ON p.id = b.person_id";

fn non_empty(persons: Vec<BoundPerson>) -> Result<Vec<BoundPerson>, IdentityError> {
    if persons.is_empty() {
        Err(IdentityError::not_found("该微信号尚未绑定任何人员"))
    } else {
        Ok(persons)
    }
}
