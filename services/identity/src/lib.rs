//! identity: administrative divisions, persons and households, WeChat
//! bindings, staff accounts and the tokens every other service verifies.

#![forbid(unsafe_code)]

pub mod api;
pub mod bindings;
pub mod bulk;
pub mod check;
pub mod config;
pub mod error;
pub mod facts;
pub mod import;
pub mod keys;
pub mod login;
pub mod reseal;
pub mod revocations;
pub mod staff;
pub mod tokens;
pub mod usage;

use std::sync::Arc;

use huimin_kit::{
    auth::{Role, TokenVerifier},
    cache::Cache,
    component::{Component, Context, Parts, Schema, TokenAuthority},
    county::County,
};
use sqlx::PgPool;

use crate::keys::PiiKeys;

pub use crate::{
    api::IdentityApi, config::IdentityConfig, error::IdentityError, facts::StreamedFact,
    tokens::TokenSigner,
};

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
    /// The county this installation serves.
    pub county: County,
    /// What a persons file may be and hold.
    pub imports: huimin_kit::table::ImportLimits,
}

/// identity as a component of the binary.
pub const COMPONENT: Component = Component {
    name: "identity",
    schema: Some(Schema {
        name: SCHEMA,
        migrator: &MIGRATOR,
    }),
    policy: api::policy,
    build: |context| Box::pin(build(context)),
    authority: Some(|env| {
        let seed = env.key32("HUIMIN_TOKEN_SIGNING_KEY")?;
        Ok(Arc::new(Authority(TokenSigner::from_seed(seed))))
    }),
};

async fn build(context: Context) -> anyhow::Result<Parts> {
    let config = IdentityConfig::from_env(context.env())?;
    let identity = Identity::new(config, context.cache()?)?;
    let pool = identity.pool.clone();
    let republish = identity.republish_task();
    let usage = identity.usage_task();
    Ok(Parts::new()
        .grpc(IdentityApi::new(identity).into_server())
        .ready_when(pool)
        .task(republish)
        .task(usage))
}

/// identity's signing key, minting the tokens of the components that share its process.
struct Authority(TokenSigner);

impl TokenAuthority for Authority {
    fn verifier(&self) -> TokenVerifier {
        self.0.verifier()
    }

    fn service_token(&self, service: &'static str, audience: &str) -> secrecy::SecretString {
        // The gateway acts for citizens; every other component is a service.
        let role = if service == "gateway" {
            Role::Gateway
        } else {
            Role::Service
        };
        let (token, _) = self.0.issue_for(
            service,
            role,
            None,
            &[audience],
            huimin_kit::component::MINTED_TOKEN_TTL,
        );
        token.into()
    }
}

impl Identity {
    /// Builds identity's state from its configuration with its own cache; connects lazily.
    pub fn connect(config: IdentityConfig) -> anyhow::Result<Self> {
        let cache = Cache::new(&config.redis);
        Self::new(config, cache)
    }

    /// Builds identity's state on a cache shared with the process; connects lazily.
    pub fn new(config: IdentityConfig, cache: Cache) -> anyhow::Result<Self> {
        Ok(Self {
            pool: huimin_kit::db::pool(&config.database, SCHEMA)?,
            cache,
            pii: Arc::new(config.pii),
            signer: config.signer,
            password_checks: Arc::new(tokio::sync::Semaphore::new(4)),
            county: config.county,
            imports: config.imports,
        })
    }

    /// Applies identity's migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        huimin_kit::db::migrate(&self.pool, SCHEMA, &MIGRATOR).await
    }
}
