//! ledger: subsidy programs, payment rolls and payments, lookups, masked
//! disclosure, provincial export and the event feed.

#![forbid(unsafe_code)]

pub mod api;
pub mod authorize;
pub mod bank;
pub mod cache_keys;
pub mod checks;
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

use std::time::Duration;

use huimin_kit::supervise::Task;
use huimin_kit::{
    cache::Cache,
    component::{Component, Context, Parts, Schema},
    peer::{Peer, PeerChannel, PeerClient, PeerSpec},
};
use huimin_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    whistle::v1::whistle_service_client::WhistleServiceClient,
};
use sqlx::PgPool;

pub use crate::{api::LedgerApi, config::LedgerConfig, error::LedgerError};

/// ledger's PostgreSQL schema.
pub const SCHEMA: &str = "ledger";

/// ledger's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// identity, as ledger calls it: with ledger's service token.
pub type IdentityClient = PeerClient<IdentityServiceClient<PeerChannel>>;

/// whistle, as ledger calls it to file a finding as a report.
pub type WhistleClient = PeerClient<WhistleServiceClient<PeerChannel>>;

/// How ledger reaches whistle (a finding opened as a report: one call, staff waiting).
pub const WHISTLE: PeerSpec = PeerSpec::new("whistle", "HUIMIN_WHISTLE_URL")
    .connect_timeout(Duration::from_secs(1))
    .timeout(Duration::from_secs(5));

/// How ledger reaches identity. A county's roll is checked against the
/// register in a few large `CheckPersons` calls: 30 s each at most.
pub const IDENTITY: PeerSpec =
    PeerSpec::new("identity", "HUIMIN_IDENTITY_URL").timeout(Duration::from_secs(30));

/// ledger as a component of the binary.
pub const COMPONENT: Component = Component {
    name: "ledger",
    schema: Some(Schema {
        name: SCHEMA,
        migrator: &MIGRATOR,
    }),
    policy: api::policy,
    build: |context| Box::pin(build(context)),
    authority: None,
};

async fn build(context: Context) -> anyhow::Result<Parts> {
    let config = LedgerConfig::from_env(context.env())?;
    let identity = context.peer(IDENTITY)?;
    let whistle = PeerClient::new(context.peer(WHISTLE)?, WhistleServiceClient::new);
    let ledger = Ledger::new(&config, context.cache()?, identity)?.with_whistle(whistle);
    let pool = ledger.pool.clone();
    let (queue, follower) = (ledger.clone(), ledger.clone());
    let poll = config.facts_poll;
    Ok(Parts::new()
        .grpc(LedgerApi::new(ledger).into_server())
        .ready_when(pool)
        .task(Task::new("ledger.roll_checks", move |stop| {
            let ledger = queue.clone();
            async move {
                ledger.run_queued_checks_until(stop, poll).await;
                Ok(())
            }
        }))
        .task(Task::new("ledger.follow_facts", move |stop| {
            let ledger = follower.clone();
            async move {
                ledger.follow_facts_until(stop, poll).await;
                Ok(())
            }
        })))
}

/// What ledger's handlers share.
#[derive(Clone)]
pub struct Ledger {
    pub pool: PgPool,
    /// Reads that may be a moment stale (the provincial export): the replica when
    /// HUIMIN_DATABASE_REPLICA_URL is set, else `pool` (docs/scaling.md).
    pub reader: PgPool,
    pub cache: Cache,
    pub identity: IdentityClient,
    /// See [`LedgerConfig::register_failures_per_day`].
    pub register_failures_per_day: i64,
    /// What a roll file may be and hold.
    pub imports: huimin_kit::table::ImportLimits,
    /// Hashes roll bank accounts for the shared-account check.
    pub bank: bank::BankKeyer,
    /// Set when a roll's cross-check is queued.
    pub checks_wakeup: std::sync::Arc<tokio::sync::Notify>,
    /// whistle, for findings opened as reports (absent in tools like `huimin seed`).
    pub whistle: Option<WhistleClient>,
    /// The `findings_open` label sets published so far, to zero those that empty.
    pub published_counts:
        std::sync::Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

impl Ledger {
    /// Builds ledger's state on the process's cache and a channel to identity.
    pub fn new(config: &LedgerConfig, cache: Cache, identity: Peer) -> anyhow::Result<Self> {
        let identity = PeerClient::new(identity, |channel| {
            IdentityServiceClient::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024)
                .max_encoding_message_size(16 * 1024 * 1024)
        });
        let pool = huimin_kit::db::pool(&config.database, SCHEMA)?;
        Ok(Self {
            reader: huimin_kit::db::replica_pool(&config.database, SCHEMA, &pool)?,
            pool,
            cache,
            identity,
            register_failures_per_day: config.register_failures_per_day,
            imports: config.imports,
            bank: bank::BankKeyer::new(config.bank_key),
            checks_wakeup: Default::default(),
            whistle: None,
            published_counts: Default::default(),
        })
    }

    /// The same ledger, able to file findings with whistle.
    pub fn with_whistle(mut self, whistle: WhistleClient) -> Self {
        self.whistle = Some(whistle);
        self
    }

    /// Applies ledger's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
