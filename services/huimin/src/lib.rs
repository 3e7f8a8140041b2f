//! Composition of huimin's services into one process, shared by the binary
//! and the integration tests so both start exactly the same code.

#![forbid(unsafe_code)]

pub mod client;
pub mod commands;

use std::{future::Future, net::SocketAddr, str::FromStr};

use huimin_identity::{Identity, IdentityApi, IdentityConfig};
use huimin_kit::{
    auth::{Role, TokenSigner, TokenVerifier},
    config::{ConfigError, Env, ServerConfig},
    server::{GrpcServer, Listeners},
};
use huimin_ledger::{Ledger, LedgerApi, LedgerConfig};
use huimin_registry::{Registry, RegistryApi, RegistryConfig};
use huimin_whistle::{Whistle, WhistleApi, WhistleConfig};

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    Identity,
    Ledger,
    Registry,
    Whistle,
    /// Every service (and later the gateway) in one process.
    All,
}

impl Services {
    fn identity(self) -> bool {
        matches!(self, Self::Identity | Self::All)
    }

    fn ledger(self) -> bool {
        matches!(self, Self::Ledger | Self::All)
    }

    fn registry(self) -> bool {
        matches!(self, Self::Registry | Self::All)
    }

    fn whistle(self) -> bool {
        matches!(self, Self::Whistle | Self::All)
    }
}

impl FromStr for Services {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identity" => Ok(Self::Identity),
            "ledger" => Ok(Self::Ledger),
            "registry" => Ok(Self::Registry),
            "whistle" => Ok(Self::Whistle),
            "all" => Ok(Self::All),
            other => Err(format!(
                "unknown service {other:?}; this build serves: identity, ledger, registry, whistle, all"
            )),
        }
    }
}

/// Every service's PostgreSQL schema and embedded migrations.
pub static SCHEMAS: [(&str, &sqlx::migrate::Migrator); 4] = [
    (huimin_identity::SCHEMA, &huimin_identity::MIGRATOR),
    (huimin_ledger::SCHEMA, &huimin_ledger::MIGRATOR),
    (huimin_registry::SCHEMA, &huimin_registry::MIGRATOR),
    (huimin_whistle::SCHEMA, &huimin_whistle::MIGRATOR),
];

/// Applies every service's migrations, each in its own schema.
pub async fn migrate_all(database: &huimin_kit::config::DatabaseConfig) -> anyhow::Result<()> {
    for (schema, migrator) in &SCHEMAS {
        let pool = huimin_kit::db::pool(database, schema)?;
        huimin_kit::db::migrate(&pool, schema, migrator).await?;
        pool.close().await;
    }
    Ok(())
}

/// How long a service token minted in-process (`serve all`) lives; the
/// process mints a new one at every start.
const IN_PROCESS_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// A process with its sockets bound and migrations applied, ready to serve.
pub struct App {
    config: ServerConfig,
    listeners: Listeners,
    server: GrpcServer,
    verifier: TokenVerifier,
}

/// The key every service verifies tokens with: HUIMIN_TOKEN_PUBLIC_KEY, or
/// derived from identity's signing key when only that is given.
pub fn token_verifier(
    env: &Env,
    identity: Option<&IdentityConfig>,
) -> Result<TokenVerifier, ConfigError> {
    let malformed = |reason: &str| ConfigError::Malformed {
        name: "HUIMIN_TOKEN_PUBLIC_KEY",
        reason: reason.to_owned(),
    };
    match (env.optional_str("HUIMIN_TOKEN_PUBLIC_KEY"), identity) {
        (Some(_), identity) => {
            let verifier = TokenVerifier::from_public_key(env.key32("HUIMIN_TOKEN_PUBLIC_KEY")?)
                .map_err(|_| malformed("not an Ed25519 public key"))?;
            if identity.is_some_and(|c| c.signer.verifier().public_key() != verifier.public_key()) {
                return Err(malformed("does not match HUIMIN_TOKEN_SIGNING_KEY"));
            }
            Ok(verifier)
        }
        (None, Some(identity)) => Ok(identity.signer.verifier()),
        (None, None) => Err(ConfigError::Missing("HUIMIN_TOKEN_PUBLIC_KEY")),
    }
}

/// ledger's configuration, completed for a process that also runs identity:
/// identity's address defaults to `identity_url` and the service token is
/// minted with identity's signing key when none is configured.
pub fn ledger_config(
    env: &Env,
    signer: Option<&TokenSigner>,
    identity_url: Option<String>,
) -> anyhow::Result<LedgerConfig> {
    let mut config = LedgerConfig::from_env(env)?;
    if config.identity_url.is_none() {
        config.identity_url = identity_url;
    }
    if config.service_token.is_none()
        && let Some(signer) = signer
    {
        let (token, _) = signer.issue("ledger", Role::Service, None, IN_PROCESS_TOKEN_TTL);
        config.service_token = Some(token.into());
    }
    Ok(config)
}

impl App {
    /// Reads configuration, applies migrations and binds the sockets.
    pub async fn build(env: &Env, services: Services) -> anyhow::Result<Self> {
        let config = ServerConfig::from_env(env)?;
        // Bound first: in `serve all`, ledger calls identity at this address.
        let listeners = Listeners::bind(&config).await?;
        let mut server = GrpcServer::new();
        let identity_config = if services.identity() {
            Some(IdentityConfig::from_env(env)?)
        } else {
            None
        };
        let verifier = token_verifier(env, identity_config.as_ref())?;
        let signer = identity_config.as_ref().map(|c| c.signer.clone());
        if let Some(identity_config) = identity_config {
            let identity = Identity::connect(identity_config)?;
            identity.migrate().await?;
            let pool = identity.pool.clone();
            server = server.add_service(
                IdentityApi::new(identity).into_server(),
                pool,
                huimin_identity::api::policy(),
            );
        }
        if services.ledger() {
            let own_address = format!("http://{}", listeners.grpc_addr());
            let ledger_config = ledger_config(
                env,
                signer.as_ref(),
                (services == Services::All).then_some(own_address),
            )?;
            let ledger = Ledger::connect(ledger_config)?;
            ledger.migrate().await?;
            let pool = ledger.pool.clone();
            server = server.add_service(
                LedgerApi::new(ledger).into_server(),
                pool,
                huimin_ledger::api::policy(),
            );
        }
        if services.registry() {
            let mut registry_config = RegistryConfig::from_env(env)?;
            if services == Services::All && registry_config.identity_url.is_none() {
                registry_config.identity_url = Some(format!("http://{}", listeners.grpc_addr()));
            }
            let registry = Registry::connect(registry_config)?;
            registry.migrate().await?;
            let pool = registry.pool.clone();
            server = server.add_service(
                RegistryApi::new(registry).into_server(),
                pool,
                huimin_registry::api::policy(),
            );
        }
        if services.whistle() {
            let mut whistle_config = WhistleConfig::from_env(env)?;
            if services == Services::All {
                let own = format!("http://{}", listeners.grpc_addr());
                whistle_config.ledger_url.get_or_insert_with(|| own.clone());
                whistle_config.identity_url.get_or_insert(own);
            }
            if whistle_config.service_token.is_none()
                && let Some(signer) = &signer
            {
                let (token, _) = signer.issue("whistle", Role::Service, None, IN_PROCESS_TOKEN_TTL);
                whistle_config.service_token = Some(token.into());
            }
            let whistle = Whistle::connect(whistle_config)?;
            whistle.migrate().await?;
            whistle.start_sealing(whistle.seal_every);
            let pool = whistle.pool.clone();
            server = server.add_service(
                WhistleApi::new(whistle).into_server(),
                pool,
                huimin_whistle::api::policy(),
            );
        }
        Ok(Self {
            config,
            listeners,
            server,
            verifier,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners.admin_addr()
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.server
            .serve(&self.config, self.listeners, self.verifier, shutdown)
            .await
    }
}
