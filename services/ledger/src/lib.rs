//! ledger: subsidy programs, payment rolls and payments, lookups, masked
//! disclosure, provincial export and the event feed.

#![forbid(unsafe_code)]

pub mod api;
pub mod bindings;
pub mod cache_keys;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod history;
pub mod import;
pub mod lookup;
pub mod programs;
pub mod rollfile;
pub mod stored;

use huimin_kit::{auth::BearerToken, cache::Cache};
use huimin_proto::identity::v1::identity_service_client::IdentityServiceClient;
use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub use crate::{api::LedgerApi, config::LedgerConfig, error::LedgerError};

/// ledger's PostgreSQL schema.
pub const SCHEMA: &str = "ledger";

/// ledger's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// identity, as ledger calls it: with ledger's service token.
pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, BearerToken>>;

/// What ledger's handlers share.
#[derive(Clone)]
pub struct Ledger {
    pub pool: PgPool,
    pub cache: Cache,
    pub identity: IdentityClient,
    /// identity's recent answers about openids.
    pub bindings: bindings::BindingMemo,
}

impl Ledger {
    /// Builds ledger's state; connects to PostgreSQL and identity lazily.
    pub fn connect(config: LedgerConfig) -> anyhow::Result<Self> {
        let url = config.identity_url.ok_or_else(|| {
            anyhow::anyhow!("configuration: HUIMIN_IDENTITY_URL is required but not set")
        })?;
        let token = config.service_token.ok_or_else(|| {
            anyhow::anyhow!("configuration: HUIMIN_SERVICE_TOKEN is required but not set")
        })?;
        let channel = Channel::from_shared(url)
            .map_err(|_| anyhow::anyhow!("configuration: HUIMIN_IDENTITY_URL is malformed"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(30))
            .connect_lazy();
        let token = BearerToken::new(token.expose_secret())
            .map_err(|_| anyhow::anyhow!("configuration: HUIMIN_SERVICE_TOKEN is malformed"))?;
        let identity = IdentityServiceClient::with_interceptor(channel, token)
            .max_decoding_message_size(16 * 1024 * 1024)
            .max_encoding_message_size(16 * 1024 * 1024);
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache: Cache::new(&config.redis),
            identity,
            bindings: bindings::BindingMemo::default(),
        })
    }

    /// Applies ledger's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
