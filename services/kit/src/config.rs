//! Typed configuration read once from the environment (12-factor).
//!
//! Every service builds its config struct from an [`Env`] at start; nothing
//! reads the environment deeper inside. A missing or malformed variable is a
//! [`ConfigError`] whose one-line message names the variable and never echoes
//! a secret value.

use std::{collections::HashMap, fmt, net::SocketAddr, str::FromStr, time::Duration};

use secrecy::SecretString;

use crate::pii::decode_key_b64;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration: {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

/// A snapshot of environment variables. Tests build one from pairs instead of
/// mutating the process environment.
#[derive(Clone, Default)]
pub struct Env(HashMap<String, String>);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: list names only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), value.into());
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn required_str(&self, name: &'static str) -> Result<String, ConfigError> {
        self.raw(name)
            .map(str::to_owned)
            .ok_or(ConfigError::Missing(name))
    }

    pub fn optional_str(&self, name: &'static str) -> Option<String> {
        self.raw(name).map(str::to_owned)
    }

    pub fn required_secret(&self, name: &'static str) -> Result<SecretString, ConfigError> {
        self.required_str(name).map(SecretString::from)
    }

    /// Parses a variable, or returns `default` when it is unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Malformed {
                    name,
                    reason: format!("{e} (got {v:?})"),
                }),
        }
    }

    /// A 32-byte key given as base64; the error never shows the value.
    pub fn key32(&self, name: &'static str) -> Result<[u8; 32], ConfigError> {
        let value = self.required_str(name)?;
        decode_key_b64(name, &value).map_err(|e| ConfigError::Malformed {
            name,
            reason: e.to_string(),
        })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for production log collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected json or pretty, not {other:?}")),
        }
    }
}

/// Logging and tracing settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub log_filter: String,
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl TelemetryConfig {
    pub fn from_env(env: &Env, default_service_name: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            log_format: env.parse_or("HUIMIN_LOG_FORMAT", LogFormat::Json)?,
            log_filter: env
                .optional_str("RUST_LOG")
                .unwrap_or_else(|| "info,sqlx::postgres::notice=warn".to_owned()),
            otlp_endpoint: env.optional_str("OTEL_EXPORTER_OTLP_ENDPOINT"),
            service_name: env
                .optional_str("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| default_service_name.to_owned()),
        })
    }
}

/// Listening addresses and the protective limits of the gRPC server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    pub shutdown_grace: Duration,
    /// How long a stopping server keeps accepting calls after it reports NOT_SERVING, so
    /// load balancers and health-checking clients route elsewhere before it stops accepting
    /// (Kubernetes takes a few seconds to take a terminating pod out of its Services).
    pub shutdown_delay: Duration,
    /// TLS on the gRPC port and to peers, when configured.
    pub tls: Option<crate::tls::TlsSettings>,
}

impl ServerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            grpc_addr: env.parse_or("HUIMIN_GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], 50051)))?,
            admin_addr: env
                .parse_or("HUIMIN_ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9090)))?,
            request_timeout: Duration::from_millis(
                env.parse_or("HUIMIN_REQUEST_TIMEOUT_MS", 5_000)?,
            ),
            concurrency_limit: env.parse_or("HUIMIN_CONCURRENCY_LIMIT", 256)?,
            shutdown_grace: Duration::from_secs(env.parse_or("HUIMIN_SHUTDOWN_GRACE_SECS", 20)?),
            shutdown_delay: Duration::from_millis(env.parse_or("HUIMIN_SHUTDOWN_DELAY_MS", 0)?),
            tls: crate::tls::TlsSettings::from_env(env)?,
        })
    }
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    /// HUIMIN_DATABASE_REPLICA_URL: a streaming replica (CloudNativePG's `-ro` service)
    /// for the reads that may be a moment stale (docs/scaling.md); unset, they go to
    /// DATABASE_URL.
    pub replica_url: Option<SecretString>,
}

impl DatabaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.required_secret("DATABASE_URL")?,
            max_connections: env.parse_or("HUIMIN_DB_MAX_CONNECTIONS", 10)?,
            replica_url: env
                .optional_str("HUIMIN_DATABASE_REPLICA_URL")
                .map(SecretString::from),
        })
    }

    /// The connection migrations run on: HUIMIN_MIGRATION_DATABASE_URL when set (a role
    /// that owns the schemas), else DATABASE_URL. With an owner role of their own, the
    /// services' role needs no more than it is granted, e.g. only SELECT and INSERT on
    /// an append-only table (see docs/operations.md).
    pub fn for_migrations(env: &Env) -> Result<Self, ConfigError> {
        match env.optional_str("HUIMIN_MIGRATION_DATABASE_URL") {
            Some(url) => Ok(Self {
                url: url.into(),
                max_connections: 2,
                replica_url: None,
            }),
            None => Self::from_env(env),
        }
    }
}

/// Redis connection settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// REDIS_URL: one server; with a cluster, its first seed node.
    pub url: SecretString,
    /// HUIMIN_REDIS_CLUSTER_URLS: the seed nodes of a Redis Cluster, comma-separated
    /// (`redis://:password@redis-0:6379,redis://:password@redis-1:6379`). When set, the
    /// cache speaks the cluster protocol and REDIS_URL is not needed.
    pub cluster_urls: Vec<SecretString>,
    /// Prepended to every key, so tests and tenants can share one Redis. No braces: a
    /// brace would become the hash tag of every key and put them all in one slot.
    pub prefix: String,
}

impl RedisConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cluster_urls: Vec<SecretString> = env
            .optional_str("HUIMIN_REDIS_CLUSTER_URLS")
            .map(|urls| {
                urls.split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(|url| SecretString::from(url.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let url = match (env.optional_str("REDIS_URL"), cluster_urls.first()) {
            (Some(url), _) => SecretString::from(url),
            (None, Some(seed)) => seed.clone(),
            (None, None) => return Err(ConfigError::Missing("REDIS_URL")),
        };
        let prefix = env
            .optional_str("HUIMIN_REDIS_PREFIX")
            .unwrap_or_else(|| "huimin:".to_owned());
        if prefix.contains(['{', '}']) {
            return Err(ConfigError::Malformed {
                name: "HUIMIN_REDIS_PREFIX",
                reason: "braces would make the prefix every key's hash tag".to_owned(),
            });
        }
        Ok(Self {
            url,
            cluster_urls,
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_is_named() {
        let err = DatabaseConfig::from_env(&Env::default()).expect_err("DATABASE_URL is unset");
        assert_eq!(
            err.to_string(),
            "configuration: DATABASE_URL is required but not set"
        );
    }

    #[test]
    fn malformed_variable_is_named_with_reason() {
        let env = Env::from_pairs([("HUIMIN_GRPC_ADDR", "localhost")]);
        let err = ServerConfig::from_env(&env).expect_err("not a socket address");
        let text = err.to_string();
        assert!(
            text.starts_with("configuration: HUIMIN_GRPC_ADDR is malformed"),
            "{text}"
        );
    }

    #[test]
    fn malformed_key_does_not_echo_the_value() {
        let env = Env::from_pairs([("HUIMIN_PII_HMAC_KEY", "c2VjcmV0LXRvby1zaG9ydA==")]);
        let err = env
            .key32("HUIMIN_PII_HMAC_KEY")
            .expect_err("16 bytes is too short");
        let text = err.to_string();
        assert!(text.contains("HUIMIN_PII_HMAC_KEY"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn cluster_seeds_stand_in_for_redis_url() {
        let env = Env::from_pairs([(
            "HUIMIN_REDIS_CLUSTER_URLS",
            "redis://10.0.0.1:6379, redis://10.0.0.2:6379,",
        )]);
        let config = RedisConfig::from_env(&env).expect("seeds are enough");
        assert_eq!(config.cluster_urls.len(), 2);
        let braced = Env::from_pairs([("REDIS_URL", "redis://r"), ("HUIMIN_REDIS_PREFIX", "{x}:")]);
        assert!(RedisConfig::from_env(&braced).is_err());
    }

    #[test]
    fn defaults_apply_when_unset() {
        let cfg = ServerConfig::from_env(&Env::default()).expect("defaults are valid");
        assert_eq!(cfg.grpc_addr.port(), 50051);
        assert_eq!(cfg.request_timeout, Duration::from_secs(5));
    }
}
