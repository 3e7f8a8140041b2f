//! Redis as shared state between replicas, beside the cache: claims (`SET NX`) and reads
//! that tell "not there" from "Redis could not say".
//!
//! The cache's own reads fold an outage into a miss, which is right for a cache and wrong
//! for a claim: a webhook that took "Redis is down" for "nobody handled this message yet"
//! would be fine, but one that took it for "someone else is handling it" would drop the
//! message. So these return `Err(Unavailable)` and let the caller choose its fallback.

use std::time::Duration;

use crate::cache::{Cache, OP_TIMEOUT, failed};

/// Redis could not answer (down, slow or unconfigured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("redis unavailable")]
pub struct Unavailable;

impl Cache {
    /// Sets `key` to `value` for `ttl` only if it does not exist: `Ok(true)` when this caller
    /// took the claim, `Ok(false)` when someone holds it.
    pub async fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, Unavailable> {
        let mut conn = self.connection().await.ok_or(Unavailable)?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .clone();
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<Option<String>>(&mut conn)).await {
            Ok(Ok(set)) => Ok(set.is_some()),
            Ok(Err(error)) => {
                failed("claim", Some(&error), "caller falls back");
                Err(Unavailable)
            }
            Err(_) => {
                failed("claim", None, "caller falls back");
                Err(Unavailable)
            }
        }
    }

    /// The bytes under `key`: `Ok(None)` when absent.
    pub async fn get_shared(&self, key: &str) -> Result<Option<Vec<u8>>, Unavailable> {
        let mut conn = self.connection().await.ok_or(Unavailable)?;
        let cmd = redis::cmd("GET").arg(self.key(key)).clone();
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<Option<Vec<u8>>>(&mut conn)).await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                failed("get_shared", Some(&error), "caller falls back");
                Err(Unavailable)
            }
            Err(_) => {
                failed("get_shared", None, "caller falls back");
                Err(Unavailable)
            }
        }
    }

    /// Sets `key` to `value` for `ttl`, whether or not it exists.
    pub async fn put_shared(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let mut conn = self.connection().await.ok_or(Unavailable)?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ms)
            .clone();
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                failed("put_shared", Some(&error), "caller falls back");
                Err(Unavailable)
            }
            Err(_) => {
                failed("put_shared", None, "caller falls back");
                Err(Unavailable)
            }
        }
    }

    /// Deletes `key` if it still holds `value` (releasing a claim one owns).
    pub async fn release(&self, key: &str, value: &[u8]) -> Result<bool, Unavailable> {
        const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";
        let mut conn = self.connection().await.ok_or(Unavailable)?;
        let cmd = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(key))
            .arg(value)
            .clone();
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<i64>(&mut conn)).await {
            Ok(Ok(n)) => Ok(n > 0),
            Ok(Err(error)) => {
                failed("release", Some(&error), "claim expires by TTL");
                Err(Unavailable)
            }
            Err(_) => {
                failed("release", None, "claim expires by TTL");
                Err(Unavailable)
            }
        }
    }
}
