//! Redis as a cache that can only make things faster.
//!
//! Every operation is bounded by a short timeout and every failure is logged
//! and treated as a miss, so Redis being slow or down degrades callers to the
//! database rather than to an error. Entries carry a TTL as well as being
//! deleted on write, which bounds how long a failed invalidation can serve
//! stale data.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::{AsyncCommands as _, aio::ConnectionManager};
use secrecy::ExposeSecret as _;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Mutex;

use crate::config::RedisConfig;

const OP_TIMEOUT: Duration = Duration::from_millis(250);
const RECONNECT_EVERY: Duration = Duration::from_secs(2);

/// A shared handle to the cache.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    prefix: String,
    connection: Mutex<Connection>,
}

#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl Cache {
    /// A cache for `config`; connects on first use, never fails here.
    pub fn new(config: &RedisConfig) -> Self {
        let client = match redis::Client::open(config.url.expose_secret()) {
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
            }),
        }
    }

    /// The full key under this deployment's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
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
            .set_number_of_retries(1);
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
        let mut conn = self.connection().await?;
        let key = self.key(key);
        match tokio::time::timeout(OP_TIMEOUT, conn.get::<_, Option<Vec<u8>>>(&key)).await {
            Ok(Ok(Some(bytes))) => serde_json::from_slice(&bytes).ok(),
            Ok(Ok(None)) => None,
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis get failed; treated as a miss");
                None
            }
            Err(_) => {
                tracing::warn!("redis get timed out; treated as a miss");
                None
            }
        }
    }

    /// Stores a value with a TTL; failures are logged and ignored.
    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        let key = self.key(key);
        let ttl = ttl.as_secs().max(1);
        match tokio::time::timeout(OP_TIMEOUT, conn.set_ex::<_, _, ()>(&key, bytes, ttl)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "redis set failed"),
            Err(_) => tracing::warn!("redis set timed out"),
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
                tracing::warn!(%error, "redis invalidation failed; entries expire by TTL");
                false
            }
            Err(_) => {
                tracing::warn!("redis invalidation timed out; entries expire by TTL");
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
                tracing::warn!(%error, "redis generation read failed; bypassing the cache");
                None
            }
            Err(_) => {
                tracing::warn!("redis generation read timed out; bypassing the cache");
                None
            }
        }
    }

    /// Moves a generation counter on, invalidating every entry keyed with
    /// the old value; returns whether Redis confirmed it.
    pub async fn bump_generation(&self, name: &str) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let key = self.key(name);
        match tokio::time::timeout(OP_TIMEOUT, conn.incr::<_, _, u64>(&key, 1)).await {
            Ok(Ok(_)) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis generation bump failed; entries expire by TTL");
                false
            }
            Err(_) => {
                tracing::warn!("redis generation bump timed out; entries expire by TTL");
                false
            }
        }
    }

    /// Moves a generation counter on after a committed write; if Redis
    /// refuses now, keeps trying in the background for `lifetime` (as long
    /// as entries keyed with the old value can live).
    pub async fn invalidate_generation(&self, name: &'static str, lifetime: Duration) {
        if self.bump_generation(name).await {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            for _ in 0..lifetime.as_secs().max(1) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if cache.bump_generation(name).await {
                    return;
                }
            }
            tracing::warn!(
                counter = name,
                "cache generation could not be moved on; entries expire by TTL"
            );
        });
    }
}
