//! The staff login throttle: attempts counted atomically before a password is
//! checked, per username and source, per username and per source, with
//! progressive delays instead of a hard lock (docs/security.md, "Staff login").

use std::time::Duration;

use huimin_kit::auth::{Caller, Role};
use sqlx::{Postgres, Transaction};

use crate::{Identity, IdentityError};

/// Attempts a key may fail before delays begin, for the `pair` (username and
/// source) and `username` counters.
pub const MAX_LOGIN_FAILURES: i32 = 10;
/// Attempts one source may fail across all usernames before delays begin:
/// higher than a username's, since one office (one address behind NAT) holds
/// several officers who mistype.
pub const MAX_SOURCE_FAILURES: i32 = 30;
/// The first delay once a counter reaches its limit; each further counted
/// failure doubles it, up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
/// The longest a key is held back: the owner waits at most this long.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A counter with no failure for this long starts again from nothing.
const FORGET_AFTER: &str = "1 day";
/// A source that logged in to a username within this long is "known" to it.
const KNOWN_FOR: &str = "90 days";

/// One of the three counters an attempt is counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Pair,
    Username,
    Source,
}

impl Counter {
    fn as_str(self) -> &'static str {
        match self {
            Counter::Pair => "pair",
            Counter::Username => "username",
            Counter::Source => "source",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Counter::Pair, Counter::Username, Counter::Source]
            .into_iter()
            .find(|c| c.as_str() == text)
    }

    fn limit(self) -> i32 {
        match self {
            Counter::Pair | Counter::Username => MAX_LOGIN_FAILURES,
            Counter::Source => MAX_SOURCE_FAILURES,
        }
    }
}

/// How long a counter at `failures` holds its key back: nothing below the
/// limit, then 30 s, 1 min, 2 min, … up to 15 min.
fn delay(counter: Counter, failures: i32) -> Option<Duration> {
    let over = failures.checked_sub(counter.limit())?;
    if over < 0 {
        return None;
    }
    let doublings = u32::try_from(over).unwrap_or(u32::MAX).min(16);
    Some(FIRST_DELAY.saturating_mul(1u32 << doublings).min(MAX_DELAY))
}

/// Where a login comes from: the client's address as the server saw it, or
/// the `x-forwarded-for` a front end we run (the gateway, or the console's
/// service token) set for its own client. A forwarded address from anyone
/// else is ignored: a guesser could otherwise name a new source per attempt.
pub fn source_of<T>(request: &tonic::Request<T>) -> String {
    let trusted_front = request.extensions().get::<Caller>().is_some_and(|c| {
        c.role == Role::Gateway || (c.role == Role::Service && c.sub == "console")
    });
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    match (trusted_front, forwarded, request.remote_addr()) {
        (true, Some(ip), _) => ip.to_string(),
        (_, _, Some(addr)) => addr.ip().to_string(),
        _ => "unknown".to_owned(),
    }
}

/// The key part stored for a username: what was typed, cut to the longest a
/// username can be, so junk cannot grow the table's rows.
fn username_key(username: &str) -> &str {
    match username.char_indices().nth(64) {
        Some((end, _)) => &username[..end],
        None => username,
    }
}

impl Identity {
    /// Counts a login attempt on every counter before its password is checked,
    /// or refuses it if a counter that applies is holding it back.
    ///
    /// Counting first (as a failure, refunded on success) under row locks is
    /// what makes parallel attempts count as serial ones: the eleventh of 60
    /// parallel guesses finds the counter at ten. A refused attempt is not
    /// counted, so hammering a held-back key does not lengthen its delay.
    pub(crate) async fn take_login_attempt(
        &self,
        username: &str,
        source: &str,
    ) -> Result<(), IdentityError> {
        let username = username_key(username);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO login_throttle (kind, username, source)
             VALUES ('pair', $1, $2), ('username', $1, ''), ('source', '', $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(username)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        let known: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM staff_login_sources
             WHERE username = $1 AND source = $2 AND last_success > now() - interval '{KNOWN_FOR}')"
        ))
        .bind(username)
        .bind(source)
        .fetch_one(&mut *tx)
        .await?;
        // Locked in one order (by kind) by every attempt, so two never deadlock.
        let rows: Vec<(String, i32, bool, bool)> = sqlx::query_as(&format!(
            "SELECT kind, failures, blocked_until > now(), last_failure < now() - interval '{FORGET_AFTER}'
             FROM login_throttle
             WHERE (kind, username, source) IN (('pair', $1, $2), ('username', $1, ''), ('source', '', $2))
             ORDER BY kind
             FOR UPDATE"
        ))
        .bind(username)
        .bind(source)
        .fetch_all(&mut *tx)
        .await?;
        let mut counted = Vec::with_capacity(rows.len());
        for (kind, failures, blocked, stale) in rows {
            let counter = Counter::parse(&kind).ok_or_else(|| {
                IdentityError::Internal(anyhow::anyhow!("unknown login counter {kind:?}"))
            })?;
            // A source the owner logged in from is not held back by what
            // strangers did to the username from elsewhere.
            let applies = !(counter == Counter::Username && known);
            if blocked && applies {
                tx.commit().await?;
                tracing::info!(counter = counter.as_str(), "login refused: throttled");
                return Err(IdentityError::LoginThrottled);
            }
            counted.push((counter, if stale { 1 } else { failures + 1 }));
        }
        for (counter, failures) in counted {
            count_attempt(&mut tx, counter, username, source, failures).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a correct password: the username's counters start again, the
    /// source gets its attempt back (but keeps what it failed elsewhere: a
    /// guesser's own account must not wipe its record), and the source becomes
    /// known to the username.
    pub(crate) async fn login_succeeded(
        &self,
        username: &str,
        source: &str,
    ) -> Result<(), IdentityError> {
        let username = username_key(username);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE login_throttle SET failures = 0, blocked_until = '-infinity'
             WHERE (kind = 'pair' AND username = $1 AND source = $2)
                OR (kind = 'username' AND username = $1 AND source = '')",
        )
        .bind(username)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE login_throttle SET failures = greatest(failures - 1, 0)
             WHERE kind = 'source' AND username = '' AND source = $1",
        )
        .bind(source)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO staff_login_sources (username, source) VALUES ($1, $2)
             ON CONFLICT (username, source) DO UPDATE SET last_success = now()",
        )
        .bind(username)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn count_attempt(
    tx: &mut Transaction<'_, Postgres>,
    counter: Counter,
    username: &str,
    source: &str,
    failures: i32,
) -> Result<(), IdentityError> {
    let (username, source) = match counter {
        Counter::Pair => (username, source),
        Counter::Username => (username, ""),
        Counter::Source => ("", source),
    };
    let delay_secs = delay(counter, failures).map(|d| d.as_secs_f64());
    sqlx::query(
        "UPDATE login_throttle SET failures = $4, last_failure = now(),
             blocked_until = CASE WHEN $5::float8 IS NULL THEN '-infinity'::timestamptz
                                  ELSE now() + make_interval(secs => $5) END
         WHERE kind = $1 AND username = $2 AND source = $3",
    )
    .bind(counter.as_str())
    .bind(username)
    .bind(source)
    .bind(failures)
    .bind(delay_secs)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_at_the_limit_double_and_stop_at_fifteen_minutes() {
        assert_eq!(delay(Counter::Pair, MAX_LOGIN_FAILURES - 1), None);
        assert_eq!(delay(Counter::Pair, MAX_LOGIN_FAILURES), Some(FIRST_DELAY));
        assert_eq!(
            delay(Counter::Username, MAX_LOGIN_FAILURES + 2),
            Some(FIRST_DELAY * 4)
        );
        assert_eq!(delay(Counter::Source, MAX_LOGIN_FAILURES), None);
        assert_eq!(delay(Counter::Pair, 10_000), Some(MAX_DELAY));
        assert_eq!(delay(Counter::Pair, i32::MAX), Some(MAX_DELAY));
    }

    #[test]
    fn a_username_key_is_cut_at_sixty_four_characters() {
        assert_eq!(username_key("liu.inspector"), "liu.inspector");
        assert_eq!(username_key(&"张".repeat(100)).chars().count(), 64);
    }
}
