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

use huimin_kit::{
    cache::Cache,
    component::{Component, Context, Parts, Schema},
    outbox::Outbox,
    peer::{PeerChannel, PeerClient, PeerSpec},
};
use huimin_proto::identity::v1::identity_service_client::IdentityServiceClient;
use sqlx::PgPool;

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

/// identity, as registry calls it: only its public `ListDivisions`.
pub type IdentityClient = PeerClient<IdentityServiceClient<PeerChannel>>;

/// How registry reaches identity: public calls, so without a token.
pub const IDENTITY: PeerSpec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL").without_token();

/// registry as a component of the binary.
pub const COMPONENT: Component = Component {
    name: "registry",
    schema: Some(Schema {
        name: SCHEMA,
        migrator: &MIGRATOR,
    }),
    policy: api::policy,
    build: |context| Box::pin(build(context)),
    authority: None,
};

async fn build(context: Context) -> anyhow::Result<Parts> {
    let config = RegistryConfig::from_env(context.env())?;
    let identity = PeerClient::new(context.peer(IDENTITY)?, IdentityServiceClient::new);
    let pool = huimin_kit::db::pool(&config.database, SCHEMA)?;
    let registry = Registry {
        reader: huimin_kit::db::replica_pool(&config.database, SCHEMA, &pool)?,
        pool,
        cache: context.cache()?,
        identity,
        imports: config.imports,
    };
    let pool = registry.pool.clone();
    Ok(Parts::new()
        .grpc(RegistryApi::new(registry).into_server())
        .ready_when(pool))
}

/// What registry's handlers share.
#[derive(Clone)]
pub struct Registry {
    pub pool: PgPool,
    /// Reads that may be a moment stale (the provincial export): the replica when
    /// HUIMIN_DATABASE_REPLICA_URL is set, else `pool` (docs/scaling.md).
    pub reader: PgPool,
    pub cache: Cache,
    pub identity: IdentityClient,
    /// What a project file may be and hold.
    pub imports: huimin_kit::table::ImportLimits,
}

impl Registry {
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
