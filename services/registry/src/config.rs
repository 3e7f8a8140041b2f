//! registry's configuration, read once from the environment.

use huimin_kit::config::{ConfigError, DatabaseConfig, Env, RedisConfig};

#[derive(Debug)]
pub struct RegistryConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
}

impl RegistryConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
        })
    }
}
