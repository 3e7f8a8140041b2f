//! registry's configuration, read once from the environment.

use huimin_kit::config::{ConfigError, DatabaseConfig, Env, RedisConfig};

#[derive(Debug)]
pub struct RegistryConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// Where identity answers (for the list of villages of a town), e.g.
    /// `http://identity:50051`. `serve all` fills it with its own address
    /// when unset. No token: `ListDivisions` is public.
    pub identity_url: Option<String>,
}

impl RegistryConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            identity_url: env.optional_str("HUIMIN_IDENTITY_URL"),
        })
    }
}
