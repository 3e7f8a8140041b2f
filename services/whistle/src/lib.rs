//! whistle: reports of wrongdoing with photos, anonymous or real-name;
//! automatic triage, routing, verification and a hash-chained audit trail.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod chain;
pub mod config;
pub mod domain;
pub mod error;
pub mod photos;
pub mod receipt;
pub mod report;
pub mod seal;
pub mod triage;
pub mod workflow;

use std::sync::Arc;

use huimin_kit::{auth::BearerToken, cache::Cache, county::County, outbox::Outbox};
use huimin_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    ledger::v1::ledger_service_client::LedgerServiceClient,
};
use object_store::{ObjectStore, local::LocalFileSystem};
use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub use crate::{api::WhistleApi, config::WhistleConfig, error::WhistleError};

/// whistle's PostgreSQL schema.
pub const SCHEMA: &str = "whistle";

/// whistle's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// whistle's outbox (`report.received`, `report.status_changed`).
pub const OUTBOX: Outbox = Outbox::new(0x5748_4953_544c); // "WHISTL"

/// identity, as whistle calls it to check a real-name reporter's binding.
pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, BearerToken>>;

/// ledger, as whistle calls it for triage facts.
pub type LedgerClient = LedgerServiceClient<InterceptedService<Channel, BearerToken>>;

/// What whistle's handlers share.
#[derive(Clone)]
pub struct Whistle {
    pub pool: PgPool,
    pub cache: Cache,
    pub attachments: Arc<dyn ObjectStore>,
    /// The directory behind `attachments`, to take a file's time off.
    pub attachments_dir: std::path::PathBuf,
    pub ledger: Option<LedgerClient>,
    pub identity: Option<IdentityClient>,
    /// How often [`Whistle::start_sealing`] seals finished days.
    pub seal_every: std::time::Duration,
    /// The county served: escalated reports go to its commission.
    pub county: County,
}

impl Whistle {
    /// Builds whistle's state; connects lazily.
    pub fn connect(config: WhistleConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.attachments_dir).map_err(|e| {
            anyhow::anyhow!(
                "configuration: HUIMIN_ATTACHMENTS_DIR {} is not usable: {e}",
                config.attachments_dir.display()
            )
        })?;
        let attachments =
            LocalFileSystem::new_with_prefix(&config.attachments_dir).map_err(|e| {
                anyhow::anyhow!("configuration: HUIMIN_ATTACHMENTS_DIR is not usable: {e}")
            })?;
        let token = config
            .service_token
            .map(|token| {
                BearerToken::new(token.expose_secret()).map_err(|_| {
                    anyhow::anyhow!("configuration: HUIMIN_SERVICE_TOKEN is malformed")
                })
            })
            .transpose()?;
        let channel = |url: String, name: &'static str| {
            Channel::from_shared(url)
                .map_err(|_| anyhow::anyhow!("configuration: {name} is malformed"))
                .map(|endpoint| {
                    endpoint
                        .connect_timeout(std::time::Duration::from_secs(1))
                        .timeout(std::time::Duration::from_secs(2))
                        .connect_lazy()
                })
        };
        let ledger = match (config.ledger_url, &token) {
            (Some(url), Some(token)) => Some(LedgerServiceClient::with_interceptor(
                channel(url, "HUIMIN_LEDGER_URL")?,
                token.clone(),
            )),
            _ => None,
        };
        let identity = match (config.identity_url, &token) {
            (Some(url), Some(token)) => Some(IdentityServiceClient::with_interceptor(
                channel(url, "HUIMIN_IDENTITY_URL")?,
                token.clone(),
            )),
            _ => anyhow::bail!(
                "configuration: HUIMIN_IDENTITY_URL and HUIMIN_SERVICE_TOKEN are required (real-name reports are checked against identity)"
            ),
        };
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache: Cache::new(&config.redis),
            attachments: Arc::new(attachments),
            attachments_dir: config.attachments_dir.clone(),
            ledger,
            identity,
            seal_every: config.seal_every,
            county: config.county,
        })
    }

    /// Applies whistle's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
