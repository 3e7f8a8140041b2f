//! The staff login throttle: attempts counted atomically before a password is
//! checked, per username and source, per username and per source, with
//! progressive delays instead of a hard lock (docs/security.md, "Staff login").

use std::time::Duration;

use huimin_kit::auth::{Caller, Role};

use crate::{Identity, IdentityError};

/// Attempts a key may fail before delays begin, for the `pair` (username and
/// source) and `username` counters.
pub const MAX_LOGIN_FAILURES: i32 = 10;
/// Attempts one source may fail across all usernames before delays begin:
/// higher than a username's, since one office (one address behind NAT) holds
/// several officers who mistype.
pub const MAX_SOURCE_FAILURES: i32 = 30;
/// The first delay once a counter reaches its limit (30 s); each further
/// counted failure doubles it (1 min, 2 min, …), up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
/// The longest a key is held back: the owner waits at most this long.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A counter with no failure for this long starts again from nothing.
const FORGET_AFTER: &str = "1 day";
/// A source that logged in to a username within this long is "known" to it.
const KNOWN_FOR: &str = "90 days";

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
        sqlx::query(
            "INSERT INTO login_throttle (kind, username, source)
             VALUES ('pair', $1, $2), ('username', $1, ''), ('source', '', $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(username)
        .bind(source)
        .execute(&self.pool)
        .await?;
        // One statement, so the counters' row locks are held for no longer
        // than it runs: a burst of attempts queues on them for milliseconds,
        // not for round trips, and holds no pool connection long. The rows
        // are locked in one order (by kind) by every attempt, so two never
        // deadlock; an attempt that waited sees the count its predecessor
        // committed (READ COMMITTED re-reads a locked row).
        let (refused, counted): (bool, i64) = sqlx::query_as(&format!(
            "WITH known AS (
                SELECT EXISTS (SELECT 1 FROM staff_login_sources
                    WHERE username = $1 AND source = $2
                      AND last_success > now() - interval '{KNOWN_FOR}') AS yes
            ),
            current AS (
                SELECT kind, username, source,
                       CASE WHEN last_failure < now() - interval '{FORGET_AFTER}' THEN 1
                            ELSE failures + 1 END AS next,
                       -- A source the owner logged in from is not held back by
                       -- what strangers did to the username from elsewhere.
                       blocked_until > now()
                           AND NOT (kind = 'username' AND (SELECT yes FROM known)) AS holds,
                       CASE kind WHEN 'source' THEN $4 ELSE $3 END AS lim
                FROM login_throttle
                WHERE (kind, username, source) IN (('pair', $1, $2), ('username', $1, ''), ('source', '', $2))
                ORDER BY kind
                FOR UPDATE
            ),
            refused AS (SELECT coalesce(bool_or(holds), false) AS yes FROM current),
            counted AS (
                UPDATE login_throttle t
                SET failures = c.next, last_failure = now(),
                    blocked_until = CASE WHEN c.next >= c.lim
                        THEN now() + make_interval(secs => least($6, $5 * power(2, least(c.next - c.lim, 16))))
                        ELSE '-infinity' END
                FROM current c
                WHERE (t.kind, t.username, t.source) = (c.kind, c.username, c.source)
                  AND NOT (SELECT yes FROM refused)
                RETURNING 1
            )
            SELECT (SELECT yes FROM refused), (SELECT count(*) FROM counted)"
        ))
        .bind(username)
        .bind(source)
        .bind(MAX_LOGIN_FAILURES)
        .bind(MAX_SOURCE_FAILURES)
        .bind(FIRST_DELAY.as_secs_f64())
        .bind(MAX_DELAY.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        if refused {
            tracing::info!("login refused: throttled");
            return Err(IdentityError::LoginThrottled);
        }
        if counted != 3 {
            return Err(IdentityError::internal(anyhow::anyhow!(
                "login attempt counted on {counted} of 3 counters"
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_key_is_cut_at_sixty_four_characters() {
        assert_eq!(username_key("liu.inspector"), "liu.inspector");
        assert_eq!(username_key(&"张".repeat(100)).chars().count(), 64);
    }
}
