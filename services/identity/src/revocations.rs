//! The revocation list: tokens revoked before they expire, by id. Kept in
//! identity's database and published to Redis, from which every process
//! reads it (`huimin_kit::revocation`); republished every minute, so a
//! Redis that lost it has it back within one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use huimin_kit::supervise::Task;

use crate::Identity;

/// How often the whole list is published again.
pub const REPUBLISH_EVERY: Duration = Duration::from_secs(60);

/// A token to revoke, as named on the command line.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("the token does not verify with this county's key: {0}")]
    NotOurs(huimin_kit::auth::TokenError),
    #[error(
        "the token has no id (issued before ids existed): it expires on its own, or rotate the signing key"
    )]
    NoId,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What was revoked.
#[derive(Debug)]
pub struct Revoked {
    pub jti: String,
    pub sub: String,
    pub expires_at: DateTime<Utc>,
    /// Whether Redis confirmed it; if not, the next republication carries it.
    pub published: bool,
}

impl Identity {
    /// Revokes `token` (verified with our key, so only our tokens are listed).
    pub async fn revoke_token(
        &self,
        token: &str,
        by: &str,
        reason: &str,
    ) -> Result<Revoked, RevokeError> {
        let claims = self
            .signer
            .verifier()
            .verify(token)
            .map_err(RevokeError::NotOurs)?;
        if claims.jti.is_empty() {
            return Err(RevokeError::NoId);
        }
        let expires_at =
            DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_by, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&claims.jti)
        .bind(expires_at)
        .bind(by)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        let published = self
            .cache
            .publish_revoked_tokens(&[(claims.jti.clone(), claims.exp)])
            .await;
        tracing::info!(jti = %claims.jti, sub = %claims.sub, published, "token revoked");
        Ok(Revoked {
            jti: claims.jti,
            sub: claims.sub,
            expires_at,
            published,
        })
    }

    /// Publishes every unexpired revocation again and prunes expired ones.
    pub async fn republish_revocations(&self) -> Result<usize, sqlx::Error> {
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        let rows: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > now()")
                .fetch_all(&self.pool)
                .await?;
        let list: Vec<(String, i64)> = rows
            .into_iter()
            .map(|(jti, exp)| (jti, exp.timestamp()))
            .collect();
        if !list.is_empty() {
            self.cache.publish_revoked_tokens(&list).await;
        }
        Ok(list.len())
    }

    /// The supervised task that republishes the list every minute.
    pub fn republish_task(&self) -> Task {
        let identity = self.clone();
        Task::new("identity.publish_revocations", move |stop| {
            let identity = identity.clone();
            async move {
                loop {
                    if let Err(error) = identity.republish_revocations().await {
                        tracing::warn!(%error, "cannot republish token revocations; retrying");
                    }
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(REPUBLISH_EVERY) => {}
                    }
                }
            }
        })
    }
}
