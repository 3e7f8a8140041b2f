//! The component interface: what a part of huimin (a gRPC service or an HTTP
//! part) declares so that kit can migrate, wire, serve, supervise and stop it.
//!
//! A component is a value, not a trait object with a lifetime: its name, its
//! schema with migrations, and a `build` function that reads configuration
//! from a [`Context`] and returns its [`Parts`] — gRPC services with their
//! access policies, an HTTP router, the pool its readiness depends on, its
//! background tasks and, through [`Context::peer`], the services it calls.
//! The binary holds one list of components; `serve <name>` picks from it
//! and `serve all` runs them all in one process (see [`crate::app::App`]).

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use futures::future::BoxFuture;
use secrecy::SecretString;
use sqlx::PgPool;
use tonic::{server::NamedService, service::RoutesBuilder};

use crate::{
    auth::{Policy, Role, TokenVerifier},
    cache::Cache,
    config::{ConfigError, Env, RedisConfig},
    peer::{Peer, PeerSpec, PeerToken},
    supervise::Task,
};

/// A PostgreSQL schema and the migrations that build it.
#[derive(Clone, Copy)]
pub struct Schema {
    pub name: &'static str,
    pub migrator: &'static sqlx::migrate::Migrator,
}

/// One part of huimin, as the binary lists it.
#[derive(Clone, Copy)]
pub struct Component {
    /// The name `huimin serve <name>` picks it by, and the `sub` of the
    /// service token it calls its peers with.
    pub name: &'static str,
    /// Its own schema, migrated before it is built; `None` for a part that
    /// owns nothing durable (the gateway).
    pub schema: Option<Schema>,
    /// Who may call each of its RPCs: stated once, here, so the README's
    /// table can be checked against it without building anything.
    pub policy: fn() -> Policy,
    /// Reads the component's configuration and builds what it serves.
    pub build: fn(Context) -> BoxFuture<'static, anyhow::Result<Parts>>,
    /// For the one component that holds the token signing key (identity):
    /// how it mints service tokens for the components sharing its process,
    /// and the key every server of the process verifies tokens with.
    pub authority: Option<MakeAuthority>,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Builds the token authority from the configuration.
pub type MakeAuthority = fn(&Env) -> Result<Arc<dyn TokenAuthority>, ConfigError>;

/// Who can sign tokens in this process.
pub trait TokenAuthority: Send + Sync {
    /// The key tokens it signs verify with.
    fn verifier(&self) -> TokenVerifier;
    /// A service token for a component of this process (`sub` = its name)
    /// to call `audience` with, valid [`MINTED_TOKEN_TTL`].
    fn service_token(&self, service: &'static str, audience: &str) -> SecretString;
}

/// How long a token minted in-process lives; peers mint a new one when half
/// of it has passed, so a leaked one is of use for an hour at most.
pub const MINTED_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// What a component is built with: the configuration, which components share
/// the process, and the process's shared handles.
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
    /// The component being built.
    component: &'static str,
}

struct ContextInner {
    env: Env,
    /// The components this process runs.
    local: Vec<&'static str>,
    /// This process's own gRPC address, for peers that run in it.
    own_grpc: String,
    authority: Option<Arc<dyn TokenAuthority>>,
    /// The key the process verifies tokens with, to check a configured token at start.
    verifier: TokenVerifier,
    cache: OnceLock<Cache>,
    /// TLS to peers, when configured.
    tls: Option<crate::tls::TlsSettings>,
}

impl Context {
    pub(crate) fn new(
        env: Env,
        local: Vec<&'static str>,
        own_grpc: String,
        authority: Option<Arc<dyn TokenAuthority>>,
        verifier: TokenVerifier,
        tls: Option<crate::tls::TlsSettings>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                env,
                local,
                own_grpc,
                authority,
                verifier,
                cache: OnceLock::new(),
                tls,
            }),
            component: "",
        }
    }

    pub(crate) fn for_component(&self, component: &'static str) -> Self {
        Self {
            inner: self.inner.clone(),
            component,
        }
    }

    /// The configuration.
    pub fn env(&self) -> &Env {
        &self.inner.env
    }

    /// The name of the component being built.
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// Whether `component` runs in this process.
    pub fn is_local(&self, component: &str) -> bool {
        self.inner.local.contains(&component)
    }

    /// The process's Redis cache, one connection and one client-side cache
    /// for every component: an invalidation one component makes is applied
    /// for all of them before it returns (see [`Cache::bump_generation`]).
    pub fn cache(&self) -> Result<Cache, ConfigError> {
        if let Some(cache) = self.inner.cache.get() {
            return Ok(cache.clone());
        }
        let config = RedisConfig::from_env(&self.inner.env)?;
        Ok(self.inner.cache.get_or_init(|| Cache::new(&config)).clone())
    }

    /// This component's token for calling `audience`: `HUIMIN_SERVICE_TOKEN`,
    /// or one minted in-process for that peer alone when the process also
    /// runs the token authority. A configured token is checked now — signed
    /// by the county's key, not expired, naming this component with a system
    /// role, and `audience` among the services it is meant for — rather than
    /// found wrong on the first call.
    pub fn service_token(&self, audience: &'static str) -> Result<PeerToken, ConfigError> {
        if let Some(token) = self.inner.env.optional_str("HUIMIN_SERVICE_TOKEN") {
            let malformed = |reason: String| ConfigError::Malformed {
                name: "HUIMIN_SERVICE_TOKEN",
                reason,
            };
            let caller = self
                .inner
                .verifier
                .verify(&token)
                .map_err(|e| malformed(e.to_string()))?;
            let role = if self.component == "gateway" {
                Role::Gateway
            } else {
                Role::Service
            };
            if caller.role != role || caller.sub != self.component {
                return Err(malformed(format!(
                    "it is {}'s {} token; {} needs its own ({})",
                    caller.sub, caller.role, self.component, role
                )));
            }
            if !caller.meant_for(audience) {
                return Err(malformed(format!(
                    "it is not meant for {audience} (its audience: {}); issue it with --aud {audience}",
                    if caller.aud.is_empty() {
                        "none".to_owned()
                    } else {
                        caller.aud.join(", ")
                    }
                )));
            }
            return Ok(PeerToken::Fixed(SecretString::from(token)));
        }
        match &self.inner.authority {
            Some(authority) => Ok(PeerToken::Minted {
                authority: authority.clone(),
                sub: self.component,
                audience,
            }),
            None => Err(ConfigError::Missing("HUIMIN_SERVICE_TOKEN")),
        }
    }

    /// A client channel to a peer service: its URL from `spec.url_var`, or
    /// this process's own address when the peer runs here too; a missing URL
    /// is a configuration error now, not a failed call later.
    pub fn peer(&self, spec: PeerSpec) -> Result<Peer, ConfigError> {
        let url = match self.inner.env.optional_str(spec.url_var) {
            Some(url) => url,
            None if self.is_local(spec.service) => self.inner.own_grpc.clone(),
            None => return Err(ConfigError::Missing(spec.url_var)),
        };
        let token = if spec.with_token {
            Some(self.service_token(spec.service)?)
        } else {
            None
        };
        Peer::connect(&spec, &url, token, self.inner.tls.as_ref())
    }
}

/// What a built component serves and runs.
pub struct Parts {
    pub(crate) grpc: Vec<GrpcService>,
    pub(crate) http: Vec<HttpPart>,
    pub(crate) readiness: Option<PgPool>,
    pub(crate) tasks: Vec<Task>,
}

/// A gRPC service of a component, added to the process's router at start.
pub(crate) struct GrpcService {
    pub(crate) name: &'static str,
    pub(crate) add: Box<dyn FnOnce(&mut RoutesBuilder) + Send>,
}

/// An HTTP router of a component and the variable naming its address.
pub(crate) struct HttpPart {
    pub(crate) addr_var: &'static str,
    pub(crate) default_addr: std::net::SocketAddr,
    pub(crate) router: axum::Router,
}

impl Default for Parts {
    fn default() -> Self {
        Self::new()
    }
}

impl Parts {
    pub fn new() -> Self {
        Self {
            grpc: Vec::new(),
            http: Vec::new(),
            readiness: None,
            tasks: Vec::new(),
        }
    }

    /// A gRPC service; the access rule of each of its methods is the
    /// component's [`Component::policy`].
    pub fn grpc<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc.push(GrpcService {
            name: S::NAME,
            add: Box::new(move |routes| {
                routes.add_service(service);
            }),
        });
        self
    }

    /// An HTTP router served on the address in `addr_var` (`default_addr`
    /// when unset).
    pub fn http(
        mut self,
        addr_var: &'static str,
        default_addr: std::net::SocketAddr,
        router: axum::Router,
    ) -> Self {
        self.http.push(HttpPart {
            addr_var,
            default_addr,
            router,
        });
        self
    }

    /// The component's services are SERVING only while this pool's database answers.
    pub fn ready_when(mut self, pool: PgPool) -> Self {
        self.readiness = Some(pool);
        self
    }

    /// A supervised background task (see [`crate::supervise`]).
    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }
}
