//! A process built from a list of components: configuration read and every
//! component built first (a missing variable stops start-up before anything
//! is touched), then migrations, then the sockets; [`App::run`] serves gRPC,
//! HTTP and the admin port and runs the supervised tasks until shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::TokenVerifier,
    component::{Component, Context, HttpPart, Parts, TokenAuthority},
    config::{ConfigError, DatabaseConfig, Env, ServerConfig},
    server::{GrpcServer, Listeners},
    supervise::{Supervisor, Task},
};

/// A process with its components built, migrations applied and sockets bound.
pub struct App {
    config: ServerConfig,
    listeners: Listeners,
    server: GrpcServer,
    http: Vec<(TcpListener, axum::Router)>,
    tasks: Vec<Task>,
    verifier: TokenVerifier,
}

/// The key every server verifies tokens with: HUIMIN_TOKEN_PUBLIC_KEY, or
/// the in-process authority's when only its signing key is configured.
pub fn token_verifier(
    env: &Env,
    authority: Option<&dyn TokenAuthority>,
) -> Result<TokenVerifier, ConfigError> {
    let malformed = |reason: &str| ConfigError::Malformed {
        name: "HUIMIN_TOKEN_PUBLIC_KEY",
        reason: reason.to_owned(),
    };
    match (env.optional_str("HUIMIN_TOKEN_PUBLIC_KEY"), authority) {
        (Some(_), authority) => {
            let verifier = TokenVerifier::from_public_key(env.key32("HUIMIN_TOKEN_PUBLIC_KEY")?)
                .map_err(|_| malformed("not an Ed25519 public key"))?;
            if authority.is_some_and(|a| a.verifier().public_key() != verifier.public_key()) {
                return Err(malformed("does not match HUIMIN_TOKEN_SIGNING_KEY"));
            }
            Ok(verifier)
        }
        (None, Some(authority)) => Ok(authority.verifier()),
        (None, None) => Err(ConfigError::Missing("HUIMIN_TOKEN_PUBLIC_KEY")),
    }
}

/// Applies the migrations of every component that owns a schema, each in its own schema.
pub async fn migrate(env: &Env, components: &[Component]) -> anyhow::Result<()> {
    let mut database = None;
    for schema in components.iter().filter_map(|c| c.schema) {
        let database = match &database {
            Some(database) => database,
            None => database.insert(DatabaseConfig::for_migrations(env)?),
        };
        let pool = crate::db::pool(database, schema.name)?;
        let migrated = crate::db::migrate(&pool, schema.name, schema.migrator).await;
        pool.close().await;
        migrated?;
    }
    Ok(())
}

impl App {
    /// Builds `components` into one process: reads configuration, applies
    /// migrations and binds the sockets.
    pub async fn build(env: &Env, components: &[Component]) -> anyhow::Result<Self> {
        let config = ServerConfig::from_env(env)?;
        let authority: Option<Arc<dyn TokenAuthority>> = components
            .iter()
            .find_map(|c| c.authority)
            .map(|make| make(env))
            .transpose()?;
        let verifier = token_verifier(env, authority.as_deref())?;
        // Bound before the components are built: in `serve all`, a peer in
        // this process is reached at the gRPC address.
        let listeners = Listeners::bind(&config).await?;
        let context = Context::new(
            env.clone(),
            components.iter().map(|c| c.name).collect(),
            // With TLS the process's certificate must name 127.0.0.1 (or
            // HUIMIN_TLS_DOMAIN the name it is checked for).
            format!(
                "{}://{}",
                if config.tls.is_some() {
                    "https"
                } else {
                    "http"
                },
                listeners.grpc_addr()
            ),
            authority,
            verifier.clone(),
            config.tls.clone(),
        );
        let mut built = Vec::with_capacity(components.len());
        for component in components {
            let parts = (component.build)(context.for_component(component.name))
                .await
                .with_context(|| format!("starting {}", component.name))?;
            built.push(parts);
        }
        migrate(env, components).await?;

        let mut server = components
            .iter()
            .fold(GrpcServer::new(), |server, c| server.allow((c.policy)()));
        let mut http = Vec::new();
        let mut tasks = Vec::new();
        for parts in built {
            let Parts {
                grpc,
                http: routers,
                readiness,
                tasks: own_tasks,
            } = parts;
            for service in grpc {
                server = server.add(service, readiness.clone());
            }
            for part in routers {
                http.push(bind_http(env, part).await?);
            }
            tasks.extend(own_tasks);
        }
        // Every process honours revocations; one without Redis cannot learn
        // of them and says so.
        match context.cache() {
            Ok(cache) => {
                let every = env.parse_or(
                    "HUIMIN_REVOCATION_POLL_SECS",
                    crate::revocation::DEFAULT_POLL.as_secs(),
                )?;
                tasks.push(crate::revocation::task(
                    verifier.clone(),
                    cache,
                    std::time::Duration::from_secs(every.max(1)),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "no Redis configured: token revocations are not honoured");
            }
        }
        Ok(Self {
            config,
            listeners,
            server,
            http,
            tasks,
            verifier,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners.admin_addr()
    }

    /// The addresses of the HTTP parts, in the order of the component list.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .map(|(listener, _)| {
                listener
                    .local_addr()
                    .expect("a bound listener has an address")
            })
            .collect()
    }

    /// The names of the supervised background tasks.
    pub fn task_names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(Task::name).collect()
    }

    /// Serves until `shutdown` resolves, then drains gRPC and HTTP calls and
    /// stops the background tasks, within the grace period.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = shutdown.shared();
        let token = CancellationToken::new();
        let supervisor = Supervisor::start(self.tasks, token.clone());
        // Tasks stop when the signal comes, while calls drain: one grace period
        // (after the delay in which the server still answers) for both.
        let grace = self.config.shutdown_delay + self.config.shutdown_grace;
        let deadline = Arc::new(std::sync::OnceLock::new());
        let signal = shutdown.clone();
        let stop_tasks = token.clone();
        let signalled = deadline.clone();
        tokio::spawn(async move {
            signal.await;
            let _ = signalled.set(tokio::time::Instant::now() + grace);
            stop_tasks.cancel();
        });
        // HTTP parts, like gRPC, keep answering through the shutdown delay.
        let delay = self.config.shutdown_delay;
        let stop_accepting = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.await;
                tokio::time::sleep(delay).await;
            }
        }
        .shared();
        let mut http = tokio::task::JoinSet::new();
        for (listener, router) in self.http {
            let shutdown = stop_accepting.clone();
            http.spawn(async move {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(http_addr = %addr, "serving HTTP");
                }
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            });
        }
        let result = self
            .server
            .serve(&self.config, self.listeners, self.verifier, shutdown)
            .await;
        // Tasks and HTTP calls drained beside gRPC: what is left of the same
        // grace period (at least a second) is all they get now.
        let rest = deadline
            .get()
            .map_or(grace, |at| {
                at.saturating_duration_since(tokio::time::Instant::now())
            })
            .max(Duration::from_secs(1));
        supervisor.stop(rest).await;
        let drained = async {
            while let Some(joined) = http.join_next().await {
                if let Ok(Err(error)) = joined {
                    tracing::error!(%error, "HTTP server failed");
                }
            }
        };
        if tokio::time::timeout(rest, drained).await.is_err() {
            tracing::warn!("HTTP calls still running after the grace period; abandoned");
        }
        result
    }
}

async fn bind_http(env: &Env, part: HttpPart) -> anyhow::Result<(TcpListener, axum::Router)> {
    let addr: SocketAddr = env.parse_or(part.addr_var, part.default_addr)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} {addr}: {e}", part.addr_var))?;
    Ok((listener, part.router))
}
