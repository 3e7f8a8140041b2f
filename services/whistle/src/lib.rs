//! whistle: reports of wrongdoing with photos, anonymous or real-name;
//! automatic triage, routing, verification and a hash-chained audit trail.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod chain;
pub mod config;
pub mod error;
pub mod photos;
pub mod receipt;
pub mod report;
pub mod triage;
pub mod workflow;

use std::{sync::Arc, time::Duration};

use huimin_kit::{
    cache::Cache,
    component::{Component, Context, Parts, Schema},
    outbox::Outbox,
    peer::{PeerChannel, PeerClient, PeerSpec},
    supervise::Task,
};
use huimin_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    ledger::v1::ledger_service_client::LedgerServiceClient,
};
use object_store::{ObjectStore, local::LocalFileSystem};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

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
    Ok(Parts::new()
        .grpc(WhistleApi::new(whistle).into_server(), api::policy())
        .ready_when(pool)
        .task(Task::new("whistle.seal_days", move |stop| {
            let whistle = sealer.clone();
            async move {
                whistle.seal_until(stop).await;
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
    /// The directory behind `attachments`, to take a file's time off.
    pub attachments_dir: std::path::PathBuf,
    pub ledger: Option<LedgerClient>,
    pub identity: Option<IdentityClient>,
    /// How often [`Whistle::seal_until`] seals finished days.
    pub seal_every: std::time::Duration,
}

impl Whistle {
    /// Builds whistle's state; connects lazily.
    pub fn new(
        config: WhistleConfig,
        cache: Cache,
        identity: IdentityClient,
        ledger: LedgerClient,
    ) -> anyhow::Result<Self> {
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
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache,
            attachments: Arc::new(attachments),
            attachments_dir: config.attachments_dir.clone(),
            ledger: Some(ledger),
            identity: Some(identity),
            seal_every: config.seal_every,
        })
    }

    /// Applies whistle's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }

    /// The triage rules in force: the stored set, or the built-in one.
    pub async fn rules(&self) -> Result<triage::Rules, WhistleError> {
        let stored: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT rules FROM triage_rules WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        match stored {
            Some(json) => triage::parse_rules(&json.to_string()).map_err(|e| {
                WhistleError::Internal(anyhow::anyhow!("stored triage rules are invalid: {e}"))
            }),
            None => Ok(triage::default_rules()),
        }
    }
}

impl Whistle {
    /// Replaces the triage rules after checking them; recorded in the audit trail.
    pub async fn set_rules(
        &self,
        caller: &huimin_kit::auth::Caller,
        json: &str,
    ) -> Result<triage::Rules, WhistleError> {
        let rules = triage::parse_rules(json)
            .map_err(|e| WhistleError::invalid("json", &format!("研判规则有误：{e}")))?;
        let value: serde_json::Value =
            serde_json::from_str(&rules.to_json()).map_err(|e| WhistleError::Internal(e.into()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO triage_rules (id, rules, updated_by) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET rules = EXCLUDED.rules, updated_by = EXCLUDED.updated_by, updated_at = now()",
        )
        .bind(&value)
        .bind(&caller.sub)
        .execute(&mut *tx)
        .await?;
        let actor = audit::Actor::Staff(caller.sub.clone());
        audit::record(
            &mut tx,
            chrono::Utc::now(),
            &actor,
            "triage_rules.updated",
            None,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(rules)
    }
}

#[derive(sqlx::FromRow)]
struct PendingEntry {
    id: i64,
    day: chrono::NaiveDate,
    actor: String,
    action: String,
    report_id: Option<i64>,
    detail: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct PendingEvent {
    id: i64,
    day: chrono::NaiveDate,
    kind: String,
    payload: serde_json::Value,
}

impl Whistle {
    /// Moves anonymous reports' held entries and events of days that are
    /// over into the audit chain and the outbox, in random order, each with
    /// its day's midnight. Returns how many entries were sealed.
    pub async fn seal_day_ends(&self) -> Result<usize, WhistleError> {
        let today = report::today();
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let entries: Vec<PendingEntry> = sqlx::query_as(
            "SELECT id, day, actor, action, report_id, detail FROM pending_audit WHERE day < $1 ORDER BY random()",
        )
        .bind(today)
        .fetch_all(&mut *tx)
        .await?;
        for e in &entries {
            audit::append(
                &mut tx,
                report::midnight(e.day),
                &e.actor,
                &e.action,
                e.report_id,
                e.detail.clone(),
            )
            .await?;
        }
        let events: Vec<PendingEvent> = sqlx::query_as(
            "SELECT id, day, kind, payload FROM pending_events WHERE day < $1 ORDER BY random()",
        )
        .bind(today)
        .fetch_all(&mut *tx)
        .await?;
        for e in &events {
            OUTBOX
                .append(&mut tx, &e.kind, &e.payload, report::midnight(e.day))
                .await?;
        }
        let entry_ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let event_ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        sqlx::query("DELETE FROM pending_audit WHERE id = ANY($1)")
            .bind(&entry_ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pending_events WHERE id = ANY($1)")
            .bind(&event_ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                events = events.len(),
                "anonymous reports' day sealed"
            );
        }
        Ok(entries.len())
    }

    /// Seals finished days now and then, until `stop` is cancelled.
    pub async fn seal_until(&self, stop: CancellationToken) {
        loop {
            if let Err(error) = self.seal_day_ends().await {
                tracing::warn!(%error, "sealing held audit entries failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.seal_every) => {}
            }
        }
    }
}
