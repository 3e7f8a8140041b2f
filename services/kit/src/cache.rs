//! Redis as a cache that can only make things faster.
//!
//! Every operation is bounded by a short timeout and every failure is logged
//! and treated as a miss, so Redis being slow or down degrades callers to the
//! database rather than to an error. Entries carry a TTL as well as being
//! deleted on write, which bounds how long a failed invalidation can serve
//! stale data.
//!
//! Reads of generation-keyed entries ([`Cache::get_current`]) also go
//! through Redis's server-assisted client-side cache (RESP3 tracking): a
//! hot entry is answered from this process's memory, and Redis tells the
//! process to drop it when the key changes (the generation counter moving
//! on, the entry being rewritten) or the connection is replaced. The process
//! that moves a counter on has its own copies dropped before the bump
//! returns (it waits for one more reply, which follows Redis's messages);
//! another replica may still answer from memory while Redis's
//! message is on its way to it (milliseconds), or for at most [`CLIENT_TTL`]
//! if its connection died without noticing. After a generation bump this
//! process could not make, it reads nothing from the cache for the entries'
//! lifetime.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::{AsyncCommands as _, aio::ConnectionManager};
use secrecy::ExposeSecret as _;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Mutex;

use crate::config::RedisConfig;

pub(crate) const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// Cached reads by outcome: `hit`, `miss` or `unavailable` (Redis could not say).
const READS: &str = "cache_reads_total";
/// Redis operations that failed or timed out, by operation.
const ERRORS: &str = "cache_errors_total";

fn count_read(outcome: &'static str) {
    metrics::counter!(READS, "outcome" => outcome).increment(1);
}

fn count_error(op: &'static str) {
    metrics::counter!(ERRORS, "op" => op).increment(1);
}

/// Counts and logs a Redis operation that failed or timed out; what
/// follows it (a miss, an expiry by TTL) is the caller's.
pub(crate) fn failed(op: &'static str, error: Option<&redis::RedisError>, consequence: &str) {
    count_error(op);
    match error {
        Some(error) => tracing::warn!(%error, op, "redis failed; {consequence}"),
        None => tracing::warn!(op, "redis timed out; {consequence}"),
    }
}
/// The longest an entry is answered from this process's memory.
pub const CLIENT_TTL: Duration = Duration::from_secs(2);
/// Entries held in this process's memory at most.
const CLIENT_ENTRIES: usize = 10_000;
const RECONNECT_EVERY: Duration = Duration::from_secs(2);

/// The generation counter of what identity says about one openid's
/// bindings. identity moves it on at every bind and unbind, before the call
/// returns; a service that keeps identity's answers about an openid keeps
/// them under this counter, for at most [`BINDING_ANSWER_TTL`].
pub fn openid_bindings_generation(openid: &str) -> String {
    format!("identity:openid:{openid}:generation")
}

/// Moves a counter on: a missing counter starts from the clock (ARGV[1]);
/// ARGV[2] > 0 sets its lifetime in seconds.
const BUMP: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local value = redis.call('INCR', KEYS[1])
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
";

/// How long a per-openid counter outlives its last move: far longer than any
/// entry kept under it, so an entry never outlives its counter.
pub const OPENID_GENERATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest an answer kept under [`openid_bindings_generation`] lives.
pub const BINDING_ANSWER_TTL: Duration = Duration::from_secs(30);

/// What [`Cache::get_current`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Current<T> {
    /// Cached under the counter's current value.
    Hit(T),
    /// Not cached, or cached under an older value: compute it and store it
    /// with [`Cache::put_current`] under this generation.
    Miss(u64),
    /// Redis could not say: serve from the database and cache nothing.
    Unavailable,
}

/// A shared handle to the cache.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    prefix: String,
    connection: Mutex<Connection>,
    /// Until when generation-keyed reads skip the cache: a bump failed.
    distrusted_until: std::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl Cache {
    /// A cache for `config`; connects on first use, never fails here.
    pub fn new(config: &RedisConfig) -> Self {
        // RESP3, which the client-side cache's invalidation messages need.
        let client = redis::IntoConnectionInfo::into_connection_info(config.url.expose_secret())
            .map(|info| {
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                info.set_redis_settings(settings)
            })
            .and_then(redis::Client::open);
        let client = match client {
            Ok(client) => Some(client),
            Err(_) => {
                tracing::error!("REDIS_URL is malformed; running without cache");
                None
            }
        };
        Self {
            inner: Arc::new(Inner {
                client,
                prefix: config.prefix.clone(),
                connection: Mutex::new(Connection::default()),
                distrusted_until: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The full key under this deployment's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    pub(crate) async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.inner.client.as_ref()?;
        let mut conn = self.inner.connection.lock().await;
        if let Some(manager) = &conn.manager {
            return Some(manager.clone());
        }
        // Don't hammer a Redis that is down: try again only now and then.
        if conn
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
        {
            return None;
        }
        conn.last_attempt = Some(Instant::now());
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_cache_config(
                redis::caching::CacheConfig::new()
                    .set_mode(redis::caching::CacheMode::OptIn)
                    .set_size(std::num::NonZeroUsize::new(CLIENT_ENTRIES).expect("not zero"))
                    .set_default_client_ttl(CLIENT_TTL),
            );
        match tokio::time::timeout(
            OP_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                conn.manager = Some(manager.clone());
                Some(manager)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis unreachable; serving from the database");
                None
            }
            Err(_) => {
                tracing::warn!("redis connect timed out; serving from the database");
                None
            }
        }
    }

    /// The cached value, or `None` on a miss, a decoding problem or any Redis failure.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let Some(mut conn) = self.connection().await else {
            count_read("unavailable");
            return None;
        };
        let key = self.key(key);
        let value =
            match tokio::time::timeout(OP_TIMEOUT, conn.get::<_, Option<Vec<u8>>>(&key)).await {
                Ok(Ok(Some(bytes))) => serde_json::from_slice(&bytes).ok(),
                Ok(Ok(None)) => None,
                Ok(Err(error)) => {
                    failed("get", Some(&error), "treated as a miss");
                    None
                }
                Err(_) => {
                    failed("get", None, "treated as a miss");
                    None
                }
            };
        count_read(if value.is_some() { "hit" } else { "miss" });
        value
    }

    /// Stores a value with a TTL; failures are logged and ignored.
    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.set_raw(key, bytes, ttl).await;
        }
    }

    /// Removes entries after a write; returns whether Redis confirmed it.
    pub async fn invalidate(&self, keys: &[String]) -> bool {
        if keys.is_empty() {
            return true;
        }
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match tokio::time::timeout(OP_TIMEOUT, conn.del::<_, ()>(keys)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                failed("del", Some(&error), "entries expire by TTL");
                false
            }
            Err(_) => {
                failed("del", None, "entries expire by TTL");
                false
            }
        }
    }

    /// The current value of a cache generation counter. Entries keyed with it
    /// are invalidated all at once by [`Cache::bump_generation`]. A missing
    /// counter (Redis restarted or evicted it) starts from the clock, so it
    /// can never come back to a value old entries were written under.
    pub async fn generation(&self, name: &str) -> Option<u64> {
        let mut conn = self.connection().await?;
        let key = self.key(name);
        let start = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1);
        // One round trip when the counter exists (always, but after a restart).
        let result = tokio::time::timeout(OP_TIMEOUT, async {
            if let Some(generation) = conn.get::<_, Option<u64>>(&key).await? {
                return Ok(generation);
            }
            let _: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(start)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            conn.get::<_, u64>(&key).await
        })
        .await;
        match result {
            Ok(Ok(generation)) => Some(generation),
            Ok(Err(error)) => {
                failed("generation", Some(&error), "bypassing the cache");
                None
            }
            Err(_) => {
                failed("generation", None, "bypassing the cache");
                None
            }
        }
    }

    /// The value cached at `key` if it was written under the current value
    /// of the generation counter `counter`, fetched together with the counter
    /// in one round trip (`MGET`). Entries hold the generation they were
    /// computed under; an entry of an older generation is a miss, so a
    /// reader never serves what a later write invalidated.
    pub async fn get_current<T: DeserializeOwned>(&self, counter: &str, key: &str) -> Current<T> {
        let current = self.fetch_current(counter, key).await;
        count_read(match current {
            Current::Hit(_) => "hit",
            Current::Miss(_) => "miss",
            Current::Unavailable => "unavailable",
        });
        current
    }

    async fn fetch_current<T: DeserializeOwned>(&self, counter: &str, key: &str) -> Current<T> {
        if self.distrusted() {
            return Current::Unavailable;
        }
        let Some(mut conn) = self.connection().await else {
            return Current::Unavailable;
        };
        let mut mget = redis::cmd("MGET");
        mget.arg(self.key(counter))
            .arg(self.key(key))
            .set_cache_config(redis::CommandCacheConfig::new());
        let fetched = tokio::time::timeout(
            OP_TIMEOUT,
            mget.query_async::<(Option<u64>, Option<Vec<u8>>)>(&mut conn),
        )
        .await;
        match fetched {
            Ok(Ok((Some(generation), value))) => {
                match value.and_then(|bytes| decode_current(&bytes, generation)) {
                    Some(value) => Current::Hit(value),
                    None => Current::Miss(generation),
                }
            }
            // The counter is gone (Redis restarted or evicted it): start it anew.
            Ok(Ok((None, _))) => match self.generation(counter).await {
                Some(generation) => Current::Miss(generation),
                None => Current::Unavailable,
            },
            Ok(Err(error)) => {
                failed("mget", Some(&error), "serving from the database");
                Current::Unavailable
            }
            Err(_) => {
                failed("mget", None, "serving from the database");
                Current::Unavailable
            }
        }
    }

    /// The value at `key` under the counter's current generation: from the
    /// cache when it holds it, else computed by `compute` and stored.
    pub async fn current_or<T, E, F>(
        &self,
        counter: &str,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        let current = self.get_current::<T>(counter, key).await;
        if let Current::Hit(value) = current {
            return Ok(value);
        }
        let value = compute.await?;
        if let Current::Miss(generation) = current {
            self.put_current(key, generation, &value, ttl).await;
        }
        Ok(value)
    }

    fn distrusted(&self) -> bool {
        self.inner
            .distrusted_until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Stores a value computed under `generation` (from [`Current::Miss`]).
    pub async fn put_current<T: Serialize>(
        &self,
        key: &str,
        generation: u64,
        value: &T,
        ttl: Duration,
    ) {
        let mut bytes = format!("{generation}\n").into_bytes();
        if serde_json::to_writer(&mut bytes, value).is_err() {
            return;
        }
        self.set_raw(key, bytes, ttl).await;
    }

    async fn set_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let key = self.key(key);
        let ttl = ttl.as_secs().max(1);
        match tokio::time::timeout(OP_TIMEOUT, conn.set_ex::<_, _, ()>(&key, bytes, ttl)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                failed("set", Some(&error), "not cached");
            }
            Err(_) => {
                failed("set", None, "not cached");
            }
        }
    }

    /// Moves a generation counter on, invalidating every entry keyed with
    /// the old value; returns whether Redis confirmed it.
    pub async fn bump_generation(&self, name: &str) -> bool {
        self.bump(name, None).await
    }

    /// Moves a counter on; a missing one (evicted, expired, never made)
    /// starts from the clock, never from 1, so it cannot come back to a value
    /// an old entry was written under. With `expire`, the counter lives that
    /// long after its last move (per-openid counters must not pile up).
    async fn bump(&self, name: &str, expire: Option<Duration>) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let key = self.key(name);
        let start = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1);
        // EVAL rather than redis-rs's Script (EVALSHA): one round trip, no extra feature.
        let mut eval = redis::cmd("EVAL");
        eval.arg(BUMP)
            .arg(1)
            .arg(&key)
            .arg(start)
            .arg(expire.map_or(0, |ttl| ttl.as_secs().max(1)));
        match tokio::time::timeout(OP_TIMEOUT, eval.query_async::<u64>(&mut conn)).await {
            Ok(Ok(_)) => {
                // Redis sends this connection's own invalidations right after
                // the bump's reply; once a later reply is in, they have been
                // applied, and this process no longer holds the old entries.
                let _ = tokio::time::timeout(
                    OP_TIMEOUT,
                    redis::cmd("PING").query_async::<()>(&mut conn),
                )
                .await;
                true
            }
            Ok(Err(error)) => {
                failed("incr", Some(&error), "entries expire by TTL");
                false
            }
            Err(_) => {
                failed("incr", None, "entries expire by TTL");
                false
            }
        }
    }

    /// Moves the per-subject counter `name` on (kept for `expire` after its
    /// last move); returns whether Redis confirmed it. The caller decides
    /// what an unconfirmed bump means: entries of the old value may be served
    /// by other processes until they expire.
    pub async fn bump_subject_generation(&self, name: &str, expire: Duration) -> bool {
        self.bump(name, Some(expire)).await
    }

    /// Moves a generation counter on after a committed write; if Redis
    /// refuses now, keeps trying in the background for `lifetime` (as long
    /// as entries keyed with the old value can live).
    pub async fn invalidate_generation(&self, name: &str, lifetime: Duration) {
        if self.bump_generation(name).await {
            return;
        }
        // Entries of the old generation may be in Redis and in this process's
        // memory; none of them is read until they have expired.
        if let Ok(mut until) = self.inner.distrusted_until.lock() {
            *until = Some(Instant::now() + lifetime);
        }
        let cache = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            for _ in 0..lifetime.as_secs().max(1) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if cache.bump_generation(&name).await {
                    return;
                }
            }
            tracing::warn!(
                counter = %name,
                "cache generation could not be moved on; entries expire by TTL"
            );
        });
    }
}

/// The value of an entry written by [`Cache::put_current`], if it was
/// written under `generation`.
fn decode_current<T: DeserializeOwned>(bytes: &[u8], generation: u64) -> Option<T> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let written: u64 = std::str::from_utf8(&bytes[..newline]).ok()?.parse().ok()?;
    if written != generation {
        return None;
    }
    serde_json::from_slice(&bytes[newline + 1..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_of_another_generation_is_a_miss() {
        let entry = b"41\n[1,2,3]";
        assert_eq!(decode_current::<Vec<u8>>(entry, 41), Some(vec![1, 2, 3]));
        assert_eq!(decode_current::<Vec<u8>>(entry, 42), None);
        assert_eq!(decode_current::<Vec<u8>>(b"[1,2,3]", 41), None);
        assert_eq!(decode_current::<Vec<u8>>(b"41\nnot json", 41), None);
    }
}
