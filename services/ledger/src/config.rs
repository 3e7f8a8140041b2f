//! ledger's configuration, read once from the environment.

use huimin_kit::config::{ConfigError, DatabaseConfig, Env, RedisConfig};
use huimin_kit::table::ImportLimits;

#[derive(Debug)]
pub struct LedgerConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// `HUIMIN_REGISTER_FAILURES_PER_DAY`: roll rows a staff member may send
    /// in 24 hours that the register does not confirm before their imports
    /// are refused (a county's worst real roll has a few hundred).
    pub register_failures_per_day: i64,
    /// What a roll file may be and hold.
    pub imports: ImportLimits,
    /// `HUIMIN_BANK_HMAC_KEY`: base64 of 32 random bytes; keys the hash of bank accounts
    /// the cross-checks compare. Changing it makes old and new hashes differ.
    pub bank_key: [u8; 32],
    /// `HUIMIN_FACTS_POLL_SECS`: how often identity's facts stream is read for news.
    pub facts_poll: std::time::Duration,
}

impl LedgerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            register_failures_per_day: env.parse_or("HUIMIN_REGISTER_FAILURES_PER_DAY", 2000)?,
            // A roll of a million rows is ~150 MB of CSV.
            imports: ImportLimits::from_env(env, 256)?,
            bank_key: env.key32("HUIMIN_BANK_HMAC_KEY")?,
            facts_poll: std::time::Duration::from_secs(env.parse_or("HUIMIN_FACTS_POLL_SECS", 60)?),
        })
    }
}
