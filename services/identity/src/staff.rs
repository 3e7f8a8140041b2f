//! Staff accounts, login, and audited reads of personal data.

use std::time::Duration;

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};
use chrono::{DateTime, NaiveDate, Utc};
use huimin_kit::{
    auth::{Caller, Role},
    county::County,
    pii::{IdNumber, PersonKey},
};

use crate::{Identity, IdentityError, keys::IdSeal};

/// How long a staff token lives. Short, so a lost token is soon worthless.
pub const STAFF_TOKEN_TTL: Duration = Duration::from_secs(3600);
pub use crate::login::MAX_LOGIN_FAILURES;

/// A new staff account as an administrator describes it.
#[derive(Debug)]
pub struct NewStaff<'a> {
    pub username: &'a str,
    pub role: Role,
    pub scope: Option<&'a str>,
    pub password: &'a str,
}

/// A successful login.
#[derive(Debug)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub role: Role,
    pub scope: Option<String>,
}

/// One person's record as staff see it.
#[derive(Debug)]
pub struct PersonRecord {
    pub person_key: PersonKey,
    pub name: String,
    pub id_number: IdNumber,
    pub gender: String,
    pub birth_date: NaiveDate,
    pub household_code: String,
    pub relation: String,
    pub village_code: String,
    pub facts: Vec<Fact>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct Fact {
    pub id: i64,
    pub kind: String,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
    pub detail: String,
}

/// A person's row as stored, the ID number still sealed.
#[derive(sqlx::FromRow)]
struct StoredPerson {
    id: i64,
    id_number_enc: Vec<u8>,
    id_seal: i16,
    name: String,
    gender: String,
    birth_date: NaiveDate,
    household_code: String,
    relation: String,
    village_code: String,
}

/// One entry of the personal-data access record.
#[derive(Debug, sqlx::FromRow)]
pub struct AccessEntry {
    pub id: i64,
    pub staff: String,
    pub person_key: Vec<u8>,
    pub method: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

fn hash_password(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::internal(anyhow::anyhow!("hashing password: {e}")))
}

/// A valid hash of nothing in particular, verified against when the username
/// is unknown so that a login takes as long either way.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Ac6ZPYTUy3H4j4yS1FVnPjJYIfjpaDkS7/5mEbVgD5Y";

impl Identity {
    /// Creates a staff account; returns false if the username exists and
    /// `if_missing` is set.
    pub async fn add_staff(
        &self,
        staff: NewStaff<'_>,
        if_missing: bool,
    ) -> Result<bool, IdentityError> {
        validate_new_staff(&staff, &self.county)?;
        let password = staff.password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| IdentityError::internal(e.into()))??;
        let inserted = sqlx::query(
            "INSERT INTO staff (username, password_hash, role, scope) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(staff.username)
        .bind(hash)
        .bind(staff.role.as_str())
        .bind(staff.scope)
        .execute(&self.pool)
        .await?
        .rows_affected();
        match (inserted, if_missing) {
            (1, _) => Ok(true),
            (_, true) => Ok(false),
            _ => Err(IdentityError::invalid("username", "该用户名已存在")),
        }
    }

    /// Checks a username and password from `source` (see [`crate::login`])
    /// and issues a short-lived token.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<Session, IdentityError> {
        self.take_login_attempt(username, source).await?;
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT password_hash, role, scope FROM staff WHERE username = $1 AND active",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        let hash = row
            .as_ref()
            .map_or(DECOY_HASH, |(hash, _, _)| hash.as_str())
            .to_owned();
        let password = password.to_owned();
        // argon2 takes ~19 MiB and real CPU per attempt: a few at a time.
        let _permit = self
            .password_checks
            .acquire()
            .await
            .map_err(|e| IdentityError::internal(e.into()))?;
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| IdentityError::internal(e.into()))?;
        let Some((_, role, scope)) = row.filter(|_| matches) else {
            // The attempt was counted as a failure before the check.
            tracing::info!("login refused");
            return Err(IdentityError::BadCredentials);
        };
        self.login_succeeded(username, source).await?;
        let role: Role = role
            .parse()
            .map_err(|e: String| IdentityError::internal(anyhow::anyhow!(e)))?;
        let (token, expires_at) =
            self.signer
                .issue(username, role, scope.as_deref(), STAFF_TOKEN_TTL);
        tracing::info!(%role, "staff logged in");
        Ok(Session {
            token,
            expires_at,
            role,
            scope,
        })
    }

    /// Reads one person's personal data for a staff member within scope, and
    /// records the read (in the same transaction: no record, no data).
    #[tracing::instrument(skip_all, fields(staff = %caller.sub))]
    pub async fn lookup_person(
        &self,
        caller: &Caller,
        key: &PersonKey,
        reason: &str,
    ) -> Result<PersonRecord, IdentityError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(IdentityError::invalid(
                "reason",
                "请填写查询事由（不超过500字）",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let row: Option<StoredPerson> = sqlx::query_as(
            "SELECT id, id_number_enc, id_seal, name, gender, birth_date, household_code, relation, village_code
             FROM persons WHERE person_key = $1",
        )
        .bind(key.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(StoredPerson {
            id,
            id_number_enc: sealed,
            id_seal,
            name,
            gender,
            birth_date,
            household_code,
            relation,
            village_code,
        }) = row
        else {
            return Err(IdentityError::not_found("未找到该人员"));
        };
        if !caller.covers_town(&village_code[..village_code.len().min(9)]) {
            return Err(IdentityError::forbidden("该人员不在您的管辖范围内"));
        }
        sqlx::query(
            "INSERT INTO personal_data_access (staff, role, person_id, method, reason) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&caller.sub)
        .bind(caller.role.as_str())
        .bind(id)
        .bind("LookupPerson")
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let facts: Vec<Fact> = sqlx::query_as(
            "SELECT id, kind, since, until, detail FROM person_facts WHERE person_id = $1 ORDER BY since, id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let seal = IdSeal::from_column(id_seal).ok_or_else(|| {
            IdentityError::internal(anyhow::anyhow!("unknown id_seal {id_seal} in persons"))
        })?;
        let id_number = self.pii.sealer.open_id(&sealed, key, seal).map_err(|e| {
            IdentityError::internal(anyhow::anyhow!("decrypting a stored id number: {e}"))
        })?;
        Ok(PersonRecord {
            person_key: *key,
            name,
            id_number,
            gender,
            birth_date,
            household_code,
            relation,
            village_code,
            facts,
        })
    }

    /// The access record, newest first, optionally for one staff member or person.
    pub async fn personal_data_access(
        &self,
        staff: Option<&str>,
        person: Option<&PersonKey>,
        limit: i64,
    ) -> Result<Vec<AccessEntry>, IdentityError> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.staff, p.person_key, a.method, a.reason, a.at
             FROM personal_data_access a JOIN persons p ON p.id = a.person_id
             WHERE ($1::text IS NULL OR a.staff = $1) AND ($2::bytea IS NULL OR p.person_key = $2)
             ORDER BY a.id DESC LIMIT $3",
        )
        .bind(staff)
        .bind(person.map(|k| k.as_bytes().to_vec()))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }
}

fn validate_new_staff(staff: &NewStaff<'_>, county: &County) -> Result<(), IdentityError> {
    let username_ok = staff.username.len() >= 2
        && staff.username.len() <= 64
        && staff
            .username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !username_ok {
        return Err(IdentityError::invalid(
            "username",
            "用户名应为2-64位小写字母、数字或 . _ -",
        ));
    }
    if !staff.role.is_staff() && staff.role != Role::Provincial {
        return Err(IdentityError::invalid("role", "该角色不能用于人员账号"));
    }
    match (staff.role.needs_scope(), staff.scope) {
        (true, None) => {
            return Err(IdentityError::invalid(
                "scope",
                "部门或乡镇角色必须指定管辖范围",
            ));
        }
        (false, Some(_)) => return Err(IdentityError::invalid("scope", "该角色不需要管辖范围")),
        (true, Some(scope))
            if staff.role == Role::Town && !(scope.len() == 9 && county.contains(scope)) =>
        {
            return Err(IdentityError::invalid(
                "scope",
                "乡镇代码应为9位，且属于本县",
            ));
        }
        _ => {}
    }
    if staff.password.chars().count() < 8 {
        return Err(IdentityError::invalid("password", "密码至少8位"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use huimin_kit::config::Env;

    use super::*;

    fn town_officer(scope: &str) -> NewStaff<'_> {
        NewStaff {
            username: "town.officer",
            role: Role::Town,
            scope: Some(scope),
            password: "long enough password",
        }
    }

    #[test]
    fn town_scope_must_lie_in_the_configured_county() {
        let rong = County::from_env(&Env::from_pairs([
            ("HUIMIN_COUNTY_CODE", "450921"),
            ("HUIMIN_COUNTY_NAME", "容县"),
            ("HUIMIN_COUNTY_COMMISSION", "容县纪委监委"),
        ]))
        .expect("valid county");
        let bobai = County::default();

        assert!(validate_new_staff(&town_officer("450923100"), &bobai).is_ok());
        assert!(validate_new_staff(&town_officer("450921100"), &rong).is_ok());
        let refused = validate_new_staff(&town_officer("450923100"), &rong)
            .expect_err("a 博白县 town is outside 容县");
        assert!(
            matches!(&refused, IdentityError::Core(huimin_kit::error::CoreError::Invalid { message, .. }) if message == "乡镇代码应为9位，且属于本县"),
            "{refused:?}"
        );
        assert!(validate_new_staff(&town_officer("450921"), &rong).is_err());
    }
}
