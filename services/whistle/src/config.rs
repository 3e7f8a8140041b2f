//! whistle's configuration, read once from the environment.

use std::path::PathBuf;

use huimin_kit::{
    config::{ConfigError, DatabaseConfig, Env, RedisConfig},
    county::County,
};
use secrecy::SecretString;

#[derive(Debug)]
pub struct WhistleConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// Where photos are kept: a local directory (a volume in Kubernetes).
    pub attachments_dir: PathBuf,
    /// Where ledger answers, for the facts attached at triage; `serve all`
    /// fills it with its own address when unset. Without it, triage runs
    /// without ledger facts.
    pub ledger_url: Option<String>,
    /// Where identity answers: a real-name report must come from a bound
    /// openid. `serve all` fills it with its own address when unset.
    pub identity_url: Option<String>,
    /// How often held anonymous entries of finished days are sealed.
    pub seal_every: std::time::Duration,
    /// whistle's service token for calling ledger.
    pub service_token: Option<SecretString>,
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
            ledger_url: env.optional_str("HUIMIN_LEDGER_URL"),
            seal_every: std::time::Duration::from_secs(
                env.parse_or("HUIMIN_AUDIT_SEAL_SECS", 600)?,
            ),
            identity_url: env.optional_str("HUIMIN_IDENTITY_URL"),
            service_token: env
                .optional_str("HUIMIN_SERVICE_TOKEN")
                .map(SecretString::from),
            county: County::from_env(env)?,
        })
    }
}
