//! registry's configuration, read once from the environment.

use huimin_kit::config::{ConfigError, DatabaseConfig, Env, RedisConfig};
use huimin_kit::table::ImportLimits;

#[derive(Debug)]
pub struct RegistryConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// What a project file may be and hold.
    pub imports: ImportLimits,
}

impl RegistryConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            imports: ImportLimits::from_env(env, 64)?,
        })
    }
}
