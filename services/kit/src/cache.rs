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
//! if its connection died without noticing. What a read decoded is kept beside
//! the generation it was written under (`cache_local`), so a hot read is the
//! counter's tracked `GET` and no decoding. After a generation bump this
//! process could not make, it reads nothing from the cache for the entries'
//! lifetime.
//!
//! Redis Cluster (`HUIMIN_REDIS_CLUSTER_URLS`) works the same, without the
//! client-side cache: the one multi-key read, a generation counter fetched
//! with its entry, names keys that share a hash tag (the counter's name in
//! braces), so both live in one slot; every other operation touches one key
//! (docs/scaling.md).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::AsyncCommands as _;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Mutex;

use crate::{
    cache_conn::{RedisClient, RedisConnection, Tuning},
    cache_local::Local,
    config::RedisConfig,
};

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
/// The sorted set of revoked token ids (score: the token's expiry).
pub const REVOKED_TOKENS: &str = "auth:revoked_tokens";

/// INCR, and EXPIRE on the first count of a window.
const COUNT_IN_WINDOW: &str = "local n = redis.call('INCR', KEYS[1]) \
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n";
/// The longest an entry is answered from this process's memory.
pub const CLIENT_TTL: Duration = Duration::from_secs(2);
/// Entries held in this process's memory at most.
const CLIENT_ENTRIES: usize = 10_000;
/// How long this process keeps a decoded value (see [`crate::cache_local`]), as long as the
/// client-side cache keeps the bytes it came from: a value may be served up to this long
/// after its entry expired in Redis (which only matters while a bump could not be made;
/// otherwise the counter has moved on and the value is not served at all).
const LOCAL_TTL: Duration = CLIENT_TTL;
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
    client: Option<RedisClient>,
    prefix: String,
    connection: Mutex<Connection>,
    /// Until when generation-keyed reads skip the cache: a bump failed.
    distrusted_until: std::sync::Mutex<Option<Instant>>,
    /// What generation-keyed reads and writes decoded or encoded, by entry key.
    local: Local,
}

#[derive(Default)]
struct Connection {
    manager: Option<RedisConnection>,
    last_attempt: Option<Instant>,
}

impl Cache {
    /// A cache for `config`; connects on first use, never fails here.
    pub fn new(config: &RedisConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: RedisClient::new(config, &tuning()),
                prefix: config.prefix.clone(),
                connection: Mutex::new(Connection::default()),
                distrusted_until: std::sync::Mutex::new(None),
                local: Local::new(),
            }),
        }
    }

    /// The full key under this deployment's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// The full key of the generation counter `counter`: its name in braces, a hash tag,
    /// so that a Redis Cluster puts it in the slot of its entries ([`Cache::entry_key`]).
    pub fn counter_key(&self, counter: &str) -> String {
        format!("{}{{{counter}}}", self.inner.prefix)
    }

    /// The full key of an entry kept under `counter`: the entry's own name followed by the
    /// counter's hash tag, so the counter and the entry are read together (`MGET`) from
    /// one slot, and a `KEYS prefix:name*` still finds the entry. Entry names hold no
    /// braces (openids, hex keys, codes); one that did would still be read correctly,
    /// only from two slots.
    pub fn entry_key(&self, counter: &str, key: &str) -> String {
        format!("{}{key}{{{counter}}}", self.inner.prefix)
    }

    pub(crate) async fn connection(&self) -> Option<RedisConnection> {
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
        match tokio::time::timeout(OP_TIMEOUT * 2, client.connect(&tuning())).await {
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
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.delete(keys).await
    }

    /// Removes the entry `key` kept under `counter` (see [`Cache::put_current`]);
    /// returns whether Redis confirmed it.
    pub async fn invalidate_current(&self, counter: &str, key: &str) -> bool {
        let entry = self.entry_key(counter, key);
        self.inner.local.remove(&entry);
        self.delete(vec![entry]).await
    }

    /// `DEL` of full keys. A cluster client splits a `DEL` of keys in several slots
    /// into one per slot; callers here pass one key or keys of one tag.
    async fn delete(&self, keys: Vec<String>) -> bool {
        if keys.is_empty() {
            return true;
        }
        let Some(mut conn) = self.connection().await else {
            return false;
        };
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

    /// Publishes revoked token ids with their expiry (a sorted set scored by
    /// expiry, so expired ids are dropped as it is written). `false` when
    /// Redis did not confirm: identity publishes its whole list again each
    /// minute, so a lost write is repaired within one.
    pub async fn publish_revoked_tokens(&self, revoked: &[(String, i64)]) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let key = self.key(REVOKED_TOKENS);
        let now = chrono::Utc::now().timestamp();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (jti, exp) in revoked {
            pipe.zadd(&key, jti, *exp).ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now)
            .ignore();
        let result = tokio::time::timeout(OP_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        match result {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                failed("revocations", Some(&error), "republished within a minute");
                false
            }
            Err(_) => {
                failed("revocations", None, "republished within a minute");
                false
            }
        }
    }

    /// The ids of revoked tokens that have not expired yet; `None` when
    /// Redis is unreachable (the caller keeps the list it had).
    pub async fn revoked_tokens(&self) -> Option<std::collections::HashSet<String>> {
        let mut conn = self.connection().await?;
        let now = chrono::Utc::now().timestamp();
        let result = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(REVOKED_TOKENS))
                .arg(now)
                .arg("+inf")
                .query_async::<Vec<String>>(&mut conn),
        )
        .await;
        match result {
            Ok(Ok(ids)) => Some(ids.into_iter().collect()),
            Ok(Err(error)) => {
                failed("revocations", Some(&error), "keeping the last list");
                None
            }
            Err(_) => {
                failed("revocations", None, "keeping the last list");
                None
            }
        }
    }

    /// The current value of a cache generation counter. Entries keyed with it
    /// are invalidated all at once by [`Cache::bump_generation`]. A missing
    /// counter (Redis restarted or evicted it) starts from the clock, so it
    /// can never come back to a value old entries were written under.
    pub async fn generation(&self, name: &str) -> Option<u64> {
        let mut conn = self.connection().await?;
        let key = self.counter_key(name);
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
    /// of the generation counter `counter`. Entries hold the generation they were
    /// computed under; an entry of an older generation is a miss, so a
    /// reader never serves what a later write invalidated.
    pub async fn get_current<T>(&self, counter: &str, key: &str) -> Current<T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match self.get_current_shared::<T>(counter, key).await {
            Current::Hit(value) => Current::Hit(T::clone(&value)),
            Current::Miss(generation) => Current::Miss(generation),
            Current::Unavailable => Current::Unavailable,
        }
    }

    /// [`Cache::get_current`] without copying the value: a hot read is one tracked `GET`
    /// of the counter (answered from memory) and the value this process decoded before;
    /// otherwise the counter and the entry in one round trip (`MGET`), decoded once.
    pub async fn get_current_shared<T>(&self, counter: &str, key: &str) -> Current<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let current = self.fetch_current(counter, key).await;
        count_read(match current {
            Current::Hit(_) => "hit",
            Current::Miss(_) => "miss",
            Current::Unavailable => "unavailable",
        });
        current
    }

    async fn fetch_current<T>(&self, counter: &str, key: &str) -> Current<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if self.distrusted() {
            return Current::Unavailable;
        }
        let Some(mut conn) = self.connection().await else {
            return Current::Unavailable;
        };
        let entry = self.entry_key(counter, key);
        let mut get = redis::cmd("GET");
        get.arg(self.counter_key(counter))
            .set_cache_config(redis::CommandCacheConfig::new());
        match tokio::time::timeout(OP_TIMEOUT, get.query_async::<Option<u64>>(&mut conn)).await {
            Ok(Ok(Some(generation))) => {
                if let Some(value) = self.inner.local.get::<T>(&entry, generation) {
                    return Current::Hit(value);
                }
            }
            // The counter is gone: the MGET below starts it anew.
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                failed("get", Some(&error), "serving from the database");
                return Current::Unavailable;
            }
            Err(_) => {
                failed("get", None, "serving from the database");
                return Current::Unavailable;
            }
        }
        let mut mget = redis::cmd("MGET");
        mget.arg(self.counter_key(counter))
            .arg(&entry)
            .set_cache_config(redis::CommandCacheConfig::new());
        let fetched = tokio::time::timeout(
            OP_TIMEOUT,
            mget.query_async::<(Option<u64>, Option<Vec<u8>>)>(&mut conn),
        )
        .await;
        match fetched {
            Ok(Ok((Some(generation), value))) => {
                let decoded = value.as_deref().and_then(|bytes| {
                    decode_current::<T>(bytes, generation)
                        .map(|value| (Arc::new(value), bytes.len()))
                });
                match decoded {
                    Some((value, bytes)) => {
                        self.inner
                            .local
                            .put(entry, generation, value.clone(), bytes, LOCAL_TTL);
                        Current::Hit(value)
                    }
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
    ) -> Result<Arc<T>, E>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Future<Output = Result<T, E>>,
    {
        let current = self.get_current_shared::<T>(counter, key).await;
        if let Current::Hit(value) = current {
            return Ok(value);
        }
        let value = Arc::new(compute.await?);
        if let Current::Miss(generation) = current {
            self.put_current_shared(counter, key, generation, value.clone(), ttl)
                .await;
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

    /// Stores a value computed under `generation` of `counter` (from [`Current::Miss`]).
    pub async fn put_current<T>(
        &self,
        counter: &str,
        key: &str,
        generation: u64,
        value: &T,
        ttl: Duration,
    ) where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        self.put_current_shared(counter, key, generation, Arc::new(value.clone()), ttl)
            .await;
    }

    /// [`Cache::put_current`] of a value this process keeps decoded as well.
    pub async fn put_current_shared<T>(
        &self,
        counter: &str,
        key: &str,
        generation: u64,
        value: Arc<T>,
        ttl: Duration,
    ) where
        T: Serialize + Send + Sync + 'static,
    {
        let mut bytes = format!("{generation}\n").into_bytes();
        if serde_json::to_writer(&mut bytes, value.as_ref()).is_err() {
            return;
        }
        let entry = self.entry_key(counter, key);
        self.inner.local.put(
            entry.clone(),
            generation,
            value,
            bytes.len(),
            ttl.min(LOCAL_TTL),
        );
        self.set_full(entry, bytes, ttl).await;
    }

    async fn set_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        self.set_full(self.key(key), bytes, ttl).await;
    }

    async fn set_full(&self, key: String, bytes: Vec<u8>, ttl: Duration) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
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

    /// Counts one event under `name` (a fixed window's key), setting the
    /// window's expiry on the first count: INCR and EXPIRE in one round trip
    /// (a script, so a crash between them cannot leave a counter that never
    /// expires). `None` when Redis could not say; the caller decides what
    /// that means (a rate limiter falls back to its own memory).
    pub async fn count_in_window(&self, name: &str, window: Duration) -> Option<u64> {
        let mut conn = self.connection().await?;
        let mut eval = redis::cmd("EVAL");
        eval.arg(COUNT_IN_WINDOW)
            .arg(1)
            .arg(self.key(name))
            .arg(window.as_secs().max(1));
        match tokio::time::timeout(OP_TIMEOUT, eval.query_async::<u64>(&mut conn)).await {
            Ok(Ok(count)) => Some(count),
            Ok(Err(error)) => {
                failed("count", Some(&error), "counted in memory");
                None
            }
            Err(_) => {
                failed("count", None, "counted in memory");
                None
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
        let key = self.counter_key(name);
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
                // The later command names the counter rather than being a PING,
                // so a cluster client sends it to the same node.
                let _ = tokio::time::timeout(
                    OP_TIMEOUT,
                    redis::cmd("EXISTS").arg(&key).query_async::<i64>(&mut conn),
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

/// The timeouts and client-side cache of every connection.
fn tuning() -> Tuning {
    Tuning {
        op_timeout: OP_TIMEOUT,
        client_cache: redis::caching::CacheConfig::new()
            .set_mode(redis::caching::CacheMode::OptIn)
            .set_size(std::num::NonZeroUsize::new(CLIENT_ENTRIES).expect("not zero"))
            .set_default_client_ttl(CLIENT_TTL),
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

    /// Redis Cluster's hash tag: between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag opens");
        let close = key[open..].find('}').expect("and closes") + open;
        &key[open + 1..close]
    }

    #[test]
    fn an_entry_and_its_counter_share_a_hash_tag() {
        let cache = Cache::new(&RedisConfig {
            url: "redis://127.0.0.1:9".to_owned().into(),
            cluster_urls: Vec::new(),
            prefix: "huimin:".to_owned(),
        });
        let counter = openid_bindings_generation("oWx-a");
        let entry = cache.entry_key(&counter, "ledger:authz:oWx-a:person:ab");
        assert_eq!(hash_tag(&cache.counter_key(&counter)), counter);
        assert_eq!(hash_tag(&entry), counter);
        assert!(entry.starts_with("huimin:ledger:authz:oWx-a:person:ab{"));
    }

    #[test]
    fn an_entry_of_another_generation_is_a_miss() {
        let entry = b"41\n[1,2,3]";
        assert_eq!(decode_current::<Vec<u8>>(entry, 41), Some(vec![1, 2, 3]));
        assert_eq!(decode_current::<Vec<u8>>(entry, 42), None);
        assert_eq!(decode_current::<Vec<u8>>(b"[1,2,3]", 41), None);
        assert_eq!(decode_current::<Vec<u8>>(b"41\nnot json", 41), None);
    }
}
