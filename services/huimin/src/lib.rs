//! Composition of huimin's services into one process, shared by the binary
//! and the integration tests so both start exactly the same code.

#![forbid(unsafe_code)]

pub mod commands;

use std::{future::Future, net::SocketAddr, str::FromStr};

use huimin_identity::{Identity, IdentityApi, IdentityConfig};
use huimin_kit::{
    auth::TokenVerifier,
    config::{ConfigError, Env, ServerConfig},
    server::{GrpcServer, Listeners},
};

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    Identity,
    /// Every service (and later the gateway) in one process.
    All,
}

impl FromStr for Services {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identity" => Ok(Self::Identity),
            "all" => Ok(Self::All),
            other => Err(format!(
                "unknown service {other:?}; this build serves: identity, all"
            )),
        }
    }
}

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

impl App {
    /// Reads configuration, applies migrations and binds the sockets.
    pub async fn build(env: &Env, services: Services) -> anyhow::Result<Self> {
        let config = ServerConfig::from_env(env)?;
        let mut server = GrpcServer::new();
        let verifier = match services {
            Services::Identity | Services::All => {
                let identity_config = IdentityConfig::from_env(env)?;
                let verifier = token_verifier(env, Some(&identity_config))?;
                let identity = Identity::connect(identity_config)?;
                identity.migrate().await?;
                let pool = identity.pool.clone();
                server = server.add_service(
                    IdentityApi::new(identity).into_server(),
                    pool,
                    huimin_identity::api::policy(),
                );
                verifier
            }
        };
        let listeners = Listeners::bind(&config).await?;
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
