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

use std::sync::Arc;

use huimin_kit::{auth::BearerToken, cache::Cache, outbox::Outbox};
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
                WhistleError::internal(anyhow::anyhow!("stored triage rules are invalid: {e}"))
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
            .map_err(|e| WhistleError::invalid("json", format!("研判规则有误：{e}")))?;
        let value: serde_json::Value =
            serde_json::from_str(&rules.to_json()).map_err(|e| WhistleError::internal(e.into()))?;
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

    /// Seals finished days now and then, for as long as the process runs.
    pub fn start_sealing(&self, every: std::time::Duration) {
        let whistle = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = whistle.seal_day_ends().await {
                    tracing::warn!(%error, "sealing held audit entries failed; will retry");
                }
                tokio::time::sleep(every).await;
            }
        });
    }
}
