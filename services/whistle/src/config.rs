//! whistle's configuration, read once from the environment.

use std::path::PathBuf;

use huimin_kit::{
    config::{ConfigError, DatabaseConfig, Env, RedisConfig},
    county::County,
};

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
        })
    }
}
