//! identity: administrative divisions, persons and households, WeChat
//! bindings, staff accounts and the tokens every other service verifies.

#![forbid(unsafe_code)]

pub mod api;
pub mod bindings;
pub mod bulk;
pub mod check;
pub mod config;
pub mod error;
pub mod import;
pub mod staff;

use std::sync::Arc;

use huimin_kit::{auth::TokenSigner, cache::Cache, config::PiiKeys};
use sqlx::PgPool;

pub use crate::{api::IdentityApi, config::IdentityConfig, error::IdentityError};

/// identity's PostgreSQL schema.
pub const SCHEMA: &str = "identity";

/// identity's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What identity's handlers share.
#[derive(Clone)]
pub struct Identity {
    pub pool: PgPool,
    pub cache: Cache,
    pub pii: Arc<PiiKeys>,
    pub signer: TokenSigner,
    /// Bounds concurrent password hashing, so logins can't exhaust memory.
    pub password_checks: Arc<tokio::sync::Semaphore>,
}

impl Identity {
    /// Builds identity's state from its configuration; connects lazily.
    pub fn connect(config: IdentityConfig) -> anyhow::Result<Self> {
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache: Cache::new(&config.redis),
            pii: Arc::new(config.pii),
            signer: config.signer,
            password_checks: Arc::new(tokio::sync::Semaphore::new(4)),
        })
    }

    /// Applies identity's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
