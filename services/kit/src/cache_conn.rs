//! The cache's connection to Redis: one server (or a Sentinel-fronted primary) through a
//! [`ConnectionManager`], or a Redis Cluster through redis-rs's cluster client, chosen
//! by configuration (`HUIMIN_REDIS_CLUSTER_URLS`, docs/scaling.md).
//!
//! Both reconnect by themselves, so the cache above sees one connection type and does
//! not care which it has; only a single server keeps RESP3 client-side caching (see
//! [`RedisClient::new`] for why a cluster does not). Multi-key commands
//! (the generation counter read with its entry) name keys that share a hash tag, so a
//! cluster answers them from one slot (see `Cache::entry_key`).

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster_async::ClusterConnection,
};
use secrecy::ExposeSecret as _;

use crate::config::RedisConfig;

/// Where the cache connects: built once from configuration, never fails to build.
pub(crate) enum RedisClient {
    Single(redis::Client),
    // Boxed: built once per process, and four times the size of the other.
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// A live connection of either kind; cheap to clone, like the two it wraps.
#[derive(Clone)]
pub(crate) enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Short timeouts (Redis only ever makes things faster) for both kinds, and the
/// client-side cache of generation-keyed reads for a single server.
pub(crate) struct Tuning {
    pub(crate) op_timeout: std::time::Duration,
    pub(crate) client_cache: redis::caching::CacheConfig,
}

impl RedisClient {
    /// The client for `config`, or `None` (running without cache) when a URL is malformed
    /// or the cluster's seeds disagree on credentials.
    pub(crate) fn new(config: &RedisConfig, tuning: &Tuning) -> Option<Self> {
        let client = if config.cluster_urls.is_empty() {
            resp3(config.url.expose_secret())
                .and_then(redis::Client::open)
                .map(Self::Single)
        } else {
            config
                .cluster_urls
                .iter()
                .map(|url| resp3(url.expose_secret()))
                .collect::<redis::RedisResult<Vec<_>>>()
                .and_then(|seeds| {
                    redis::cluster::ClusterClientBuilder::new(seeds)
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .connection_timeout(tuning.op_timeout)
                        .response_timeout(tuning.op_timeout)
                        // A failed-over master's slots answer MOVED (or refuse) until the
                        // client has the new map; short retries follow it, and the cache's
                        // own timeout bounds the wait, after which the caller reads the
                        // database.
                        .retries(2)
                        .min_retry_wait(10)
                        .max_retry_wait(100)
                        // No client-side cache on a cluster: with it, redis-rs 1.8 answered
                        // every generation read (MGET) after a failover with "Expected
                        // Value::Array" until the process restarted (the failover drill,
                        // docs/scaling.md). Each read is one round trip to the slot's
                        // master instead.
                        .build()
                })
                .map(|client| Self::Cluster(Box::new(client)))
        };
        match client {
            Ok(client) => Some(client),
            Err(_) => {
                // The URL may hold a password: name the variable, never the value.
                tracing::error!(
                    "REDIS_URL or HUIMIN_REDIS_CLUSTER_URLS is malformed; running without cache"
                );
                None
            }
        }
    }

    /// Connects; the caller bounds how long it may take.
    pub(crate) async fn connect(&self, tuning: &Tuning) -> redis::RedisResult<RedisConnection> {
        match self {
            Self::Single(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(tuning.op_timeout))
                    .set_response_timeout(Some(tuning.op_timeout))
                    .set_number_of_retries(1)
                    .set_cache_config(tuning.client_cache);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(RedisConnection::Single)
            }
            Self::Cluster(client) => client
                .get_async_connection()
                .await
                .map(RedisConnection::Cluster),
        }
    }
}

/// `url` parsed, asking for RESP3 (the client-side cache's invalidation messages need it).
fn resp3(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    redis::IntoConnectionInfo::into_connection_info(url).map(|info| {
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        info.set_redis_settings(settings)
    })
}
