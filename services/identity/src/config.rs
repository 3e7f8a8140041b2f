//! identity's configuration, read once from the environment.

use crate::TokenSigner;
use crate::keys::PiiKeys;
use huimin_kit::{
    config::{ConfigError, DatabaseConfig, Env, RedisConfig},
    county::County,
    table::ImportLimits,
};

#[derive(Debug)]
pub struct IdentityConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub pii: PiiKeys,
    pub signer: TokenSigner,
    /// The county whose divisions identity holds: the root of the division
    /// tree, and the only county a town officer's scope may lie in.
    pub county: County,
    /// What a persons file may be and hold.
    pub imports: ImportLimits,
}

impl IdentityConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            pii: PiiKeys::from_env(env)?,
            signer: TokenSigner::from_seed(env.key32("HUIMIN_TOKEN_SIGNING_KEY")?),
            county: County::from_env(env)?,
            imports: ImportLimits::from_env(env, 64)?,
        })
    }
}
