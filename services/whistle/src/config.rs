//! whistle's configuration, read once from the environment.

use std::path::PathBuf;

use huimin_kit::{
    config::{ConfigError, DatabaseConfig, Env, RedisConfig},
    county::County,
};

const RECEIPT_HMAC_KEY: &str = "HUIMIN_RECEIPT_HMAC_KEY";

#[derive(Debug)]
pub struct WhistleConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// Where photos are kept: a local directory (a volume in Kubernetes).
    pub attachments_dir: PathBuf,
    /// How often held anonymous entries of finished days are sealed.
    pub seal_every: std::time::Duration,
    /// The county served: its commission takes escalated reports, and the
    /// built-in triage rules name its departments.
    pub county: County,
    /// `HUIMIN_RECEIPT_HMAC_KEY` (base64 of 32 bytes): keys the hash that
    /// names a client in the record of wrong receipt codes. Unset, each
    /// process draws its own, and the throttle counts per process.
    pub receipt_clients: Option<crate::receipt::ClientKeyer>,
}

impl WhistleConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            attachments_dir: env
                .optional_str("HUIMIN_ATTACHMENTS_DIR")
                .map_or_else(|| PathBuf::from("data/attachments"), PathBuf::from),
            seal_every: std::time::Duration::from_secs(
                env.parse_or("HUIMIN_AUDIT_SEAL_SECS", 600)?,
            ),
            county: County::from_env(env)?,
            receipt_clients: match env.optional_str(RECEIPT_HMAC_KEY) {
                Some(_) => Some(crate::receipt::ClientKeyer::new(
                    env.key32(RECEIPT_HMAC_KEY)?,
                )),
                None => None,
            },
        })
    }
}
