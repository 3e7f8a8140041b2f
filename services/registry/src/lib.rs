//! registry: poverty-alleviation projects (扶贫项目) — their money by source,
//! contractor, milestones and status — with a version for every change,
//! public lookups by village, town, kind and year, a resumable provincial
//! export and the event feed.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod divisions;
pub mod domain;
pub mod error;
pub mod export;
pub mod import;
pub mod lookup;
pub mod projects;

use huimin_kit::{cache::Cache, outbox::Outbox};
use huimin_proto::identity::v1::identity_service_client::IdentityServiceClient;
use sqlx::PgPool;
use tonic::transport::Channel;

pub use crate::{api::RegistryApi, config::RegistryConfig, error::RegistryError};

/// registry's PostgreSQL schema.
pub const SCHEMA: &str = "registry";

/// registry's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// registry's outbox; the key serializes registry's writers.
pub const OUTBOX: Outbox = Outbox::new(0x5245_4749_5354); // "REGIST"

/// The generation counter of every cached public lookup; moved on after
/// every committed change.
pub const PROJECTS_GENERATION: &str = "registry:projects:generation";

/// identity, as registry calls it: only its public `ListDivisions`, so
/// without a token.
pub type IdentityClient = IdentityServiceClient<Channel>;

/// What registry's handlers share.
#[derive(Clone)]
pub struct Registry {
    pub pool: PgPool,
    pub cache: Cache,
    pub identity: IdentityClient,
}

impl Registry {
    /// Builds registry's state; connects to PostgreSQL and identity lazily.
    pub fn connect(config: RegistryConfig) -> anyhow::Result<Self> {
        let url = config.identity_url.ok_or_else(|| {
            anyhow::anyhow!("configuration: HUIMIN_IDENTITY_URL is required but not set")
        })?;
        let channel = Channel::from_shared(url)
            .map_err(|_| anyhow::anyhow!("configuration: HUIMIN_IDENTITY_URL is malformed"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache: Cache::new(&config.redis),
            identity: IdentityServiceClient::new(channel),
        })
    }

    /// Applies registry's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }

    /// Invalidates every cached public lookup after a committed change. When
    /// Redis refuses, keeps trying for as long as cached entries could live.
    pub(crate) async fn changed(&self) {
        self.cache
            .invalidate_generation(PROJECTS_GENERATION, lookup::CACHE_TTL)
            .await;
    }
}
