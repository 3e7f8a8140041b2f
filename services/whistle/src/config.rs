//! whistle's configuration, read once from the environment.

use std::path::PathBuf;

use crate::chain::ChainKey;
use huimin_kit::{
    config::{ConfigError, DatabaseConfig, Env, RedisConfig},
    county::County,
};

const RECEIPT_HMAC_KEY: &str = "HUIMIN_RECEIPT_HMAC_KEY";

#[derive(Debug)]
pub struct WhistleConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// Where photos are kept: a local directory (a volume in Kubernetes)...
    pub attachments_dir: PathBuf,
    /// ...or an S3-compatible bucket, when HUIMIN_PHOTOS_S3_BUCKET is set.
    pub s3: Option<crate::photo_store::S3Config>,
    /// How often held anonymous entries of finished days are sealed.
    pub seal_every: std::time::Duration,
    /// The county served: its commission takes escalated reports, and the
    /// built-in triage rules name its departments.
    pub county: County,
    pub audit: AuditConfig,
    /// `HUIMIN_RECEIPT_HMAC_KEY` (base64 of 32 bytes): keys the hash that
    /// names a client in the record of wrong receipt codes. Unset, each
    /// process draws its own, and the throttle counts per process.
    pub receipt_clients: Option<crate::receipt::ClientKeyer>,
}

/// The audit chain's key and where its head is published.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// HUIMIN_AUDIT_HMAC_KEY: base64 of 32 random bytes, never in the database.
    pub key: ChainKey,
    /// HUIMIN_AUDIT_HEAD_DIR: where the head is published (default data/audit-head).
    pub head_dir: PathBuf,
    /// HUIMIN_AUDIT_HEAD_SECS: how often (default 300).
    pub head_every: std::time::Duration,
    /// HUIMIN_AUDIT_UNKEYED_UNTIL: the last seq written before entries were keyed, on a
    /// deployment that had a chain then (default 0: every entry must be keyed).
    pub unkeyed_until: i64,
}

impl AuditConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            key: ChainKey::new(env.key32("HUIMIN_AUDIT_HMAC_KEY")?),
            head_dir: env
                .optional_str("HUIMIN_AUDIT_HEAD_DIR")
                .map_or_else(|| PathBuf::from("data/audit-head"), PathBuf::from),
            head_every: std::time::Duration::from_secs(
                env.parse_or("HUIMIN_AUDIT_HEAD_SECS", 300)?,
            ),
            unkeyed_until: env.parse_or("HUIMIN_AUDIT_UNKEYED_UNTIL", 0)?,
        })
    }
}

impl WhistleConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            attachments_dir: env
                .optional_str("HUIMIN_ATTACHMENTS_DIR")
                .map_or_else(|| PathBuf::from("data/attachments"), PathBuf::from),
            s3: crate::photo_store::S3Config::from_env(env)?,
            seal_every: std::time::Duration::from_secs(
                env.parse_or("HUIMIN_AUDIT_SEAL_SECS", 600)?,
            ),
            county: County::from_env(env)?,
            audit: AuditConfig::from_env(env)?,
            receipt_clients: match env.optional_str(RECEIPT_HMAC_KEY) {
                Some(_) => Some(crate::receipt::ClientKeyer::new(
                    env.key32(RECEIPT_HMAC_KEY)?,
                )),
                None => None,
            },
        })
    }
}
