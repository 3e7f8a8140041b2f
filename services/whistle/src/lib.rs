//! whistle: reports of wrongdoing with photos, anonymous or real-name;
//! automatic triage, routing, verification and a hash-chained audit trail.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod chain;
pub mod config;
pub mod domain;
pub mod error;
pub mod facts;
pub mod head;
pub mod photo_store;
pub mod photos;
pub mod receipt;
pub mod report;
pub mod seal;
pub mod triage;
pub mod workflow;

use std::{sync::Arc, time::Duration};

use huimin_kit::{
    cache::Cache,
    component::{Component, Context, Parts, Schema},
    county::County,
    outbox::Outbox,
    peer::{PeerChannel, PeerClient, PeerSpec},
    supervise::Task,
};
use huimin_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    ledger::v1::ledger_service_client::LedgerServiceClient,
};
use object_store::ObjectStore;
use sqlx::PgPool;

pub use crate::{api::WhistleApi, config::WhistleConfig, error::WhistleError};

/// whistle's PostgreSQL schema.
pub const SCHEMA: &str = "whistle";

/// whistle's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// whistle's outbox (`report.received`, `report.status_changed`).
pub const OUTBOX: Outbox = Outbox::new(0x5748_4953_544c); // "WHISTL"

/// identity, as whistle calls it to check a real-name reporter's binding.
pub type IdentityClient = PeerClient<IdentityServiceClient<PeerChannel>>;

/// ledger, as whistle calls it for triage facts.
pub type LedgerClient = PeerClient<LedgerServiceClient<PeerChannel>>;

/// Both are asked while a citizen waits for a receipt: short timeouts.
pub const IDENTITY: PeerSpec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL")
    .connect_timeout(Duration::from_secs(1))
    .timeout(Duration::from_secs(2));
pub const LEDGER: PeerSpec = PeerSpec::new("ledger", "HUIMIN_LEDGER_URL")
    .connect_timeout(Duration::from_secs(1))
    .timeout(Duration::from_secs(2));

/// whistle as a component of the binary.
pub const COMPONENT: Component = Component {
    name: "whistle",
    schema: Some(Schema {
        name: SCHEMA,
        migrator: &MIGRATOR,
    }),
    policy: api::policy,
    build: |context| Box::pin(build(context)),
    authority: None,
};

async fn build(context: Context) -> anyhow::Result<Parts> {
    let config = WhistleConfig::from_env(context.env())?;
    let identity = PeerClient::new(context.peer(IDENTITY)?, IdentityServiceClient::new);
    let ledger = PeerClient::new(context.peer(LEDGER)?, LedgerServiceClient::new);
    let whistle = Whistle::new(config, context.cache()?, identity, ledger)?;
    let pool = whistle.pool.clone();
    let sealer = whistle.clone();
    let publisher = whistle.clone();
    Ok(Parts::new()
        .grpc(WhistleApi::new(whistle).into_server())
        .ready_when(pool)
        .task(Task::new("whistle.seal_days", move |stop| {
            let whistle = sealer.clone();
            async move {
                whistle.seal_until(stop).await;
                Ok(())
            }
        }))
        .task(Task::new("whistle.publish_audit_head", move |stop| {
            let whistle = publisher.clone();
            async move {
                whistle.publish_heads_until(stop).await;
                Ok(())
            }
        })))
}

/// What whistle's handlers share.
#[derive(Clone)]
pub struct Whistle {
    pub pool: PgPool,
    pub cache: Cache,
    pub attachments: Arc<dyn ObjectStore>,
    /// Whether `attachments` is an object store, which then takes anonymous reports'
    /// photos too once their day is sealed (see [`Whistle::move_sealed_photos`]).
    pub anonymous_photos_in_store: bool,
    pub ledger: LedgerClient,
    pub identity: IdentityClient,
    /// How often [`Whistle::seal_until`] seals finished days.
    pub seal_every: std::time::Duration,
    /// The county served: escalated reports go to its commission.
    pub county: County,
    /// The audit chain's key (kept out of the database), and where and
    /// how often the chain's head is published.
    pub audit: config::AuditConfig,
    /// Names clients in the record of wrong receipt codes.
    pub receipt_clients: receipt::ClientKeyer,
}

impl Whistle {
    /// Builds whistle's state; connects lazily.
    pub fn new(
        config: WhistleConfig,
        cache: Cache,
        identity: IdentityClient,
        ledger: LedgerClient,
    ) -> anyhow::Result<Self> {
        let store = photo_store::PhotoStore::open(config.s3.as_ref(), &config.attachments_dir)?;
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache,
            attachments: store.objects,
            anonymous_photos_in_store: store.holds_anonymous,
            ledger,
            identity,
            seal_every: config.seal_every,
            county: config.county,
            audit: config.audit,
            receipt_clients: config.receipt_clients.unwrap_or_else(|| {
                tracing::warn!(
                    "HUIMIN_RECEIPT_HMAC_KEY not set: receipt guesses are counted per process"
                );
                receipt::ClientKeyer::random()
            }),
        })
    }

    /// Applies whistle's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
