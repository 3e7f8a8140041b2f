//! gateway: the public edge. WeChat's webhook, the conversation a citizen
//! has with the county's Official Account, and the H5 pages for what chat
//! does badly — each translated into gRPC calls to identity, ledger,
//! registry and whistle with the gateway's service token and the openid it
//! verified. It owns nothing durable: what replicas must share (message
//! dedupe, rate limits, WeChat's access_token) lives in Redis.

#![forbid(unsafe_code)]

pub mod chat;
pub mod config;
pub mod h5;
pub mod limits;
pub mod peers;
pub mod usage;
pub mod webhook;
pub mod wechat;

use std::{net::SocketAddr, sync::Arc};

use huimin_kit::{
    auth::Policy,
    cache::Cache,
    component::{Component, Context, Parts},
};

pub use crate::config::GatewayConfig;
use crate::peers::{IdentityClient, LedgerClient, RegistryClient, WhistleClient};

/// Where the gateway listens unless `HUIMIN_HTTP_ADDR` says otherwise.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);

/// The gateway as a component of the binary: HTTP only, no schema.
pub const COMPONENT: Component = Component {
    name: "gateway",
    schema: None,
    // It serves no gRPC; its HTTP routes authenticate WeChat's signature
    // and the citizen's session themselves.
    policy: Policy::new,
    build: |context| Box::pin(build(context)),
    authority: None,
};

async fn build(context: Context) -> anyhow::Result<Parts> {
    let gateway = Gateway::from_context(&context)?;
    let flusher = usage::flush::Flusher::new(
        gateway.usage.clone(),
        gateway.identity.clone(),
        gateway.config.usage_flush,
    );
    Ok(Parts::new()
        .http("HUIMIN_HTTP_ADDR", DEFAULT_HTTP_ADDR, router(gateway)?)
        .task(flusher.task()))
}

/// Every route of the gateway; fails on a malformed EncodingAESKey.
pub fn router(gateway: Gateway) -> anyhow::Result<axum::Router> {
    Ok(axum::Router::new()
        .merge(webhook::router(gateway.clone())?)
        .merge(h5::router(gateway))
        .layer(axum::middleware::from_fn(traced)))
}

/// Every request starts a trace (or joins the caller's) that each gRPC call continues.
async fn traced(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let span = huimin_kit::telemetry::http_request_span(
        request.method(),
        request.uri().path(),
        request.headers(),
    );
    next.run(request).instrument(span).await
}

/// What the gateway's handlers share; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub config: Arc<GatewayConfig>,
    pub cache: Cache,
    pub identity: IdentityClient,
    pub ledger: LedgerClient,
    pub registry: RegistryClient,
    pub whistle: WhistleClient,
    /// WeChat's server API (customer-service messages, media).
    pub wechat: wechat::WeChatApi,
    pub limits: limits::Limiter,
    /// Usage figures counted in memory and flushed to identity (see [`usage`]).
    pub usage: usage::Usage,
}

impl Gateway {
    /// Reads the configuration and builds the peer clients; a missing
    /// setting is an error now, not on the first message.
    pub fn from_context(context: &Context) -> anyhow::Result<Self> {
        let config = Arc::new(GatewayConfig::from_env(context.env())?);
        let cache = context.cache()?;
        // The openid hashes' key, derived from a secret the gateway has anyway:
        // stable per deployment, unknown outside it.
        let usage_key = usage::client_key(
            secrecy::ExposeSecret::expose_secret(&config.appsecret).as_bytes(),
            "huimin usage v1",
        );
        Ok(Self {
            wechat: wechat::WeChatApi::new(config.clone(), cache.clone()),
            limits: limits::Limiter::new(
                limits::LimitsConfig::from_env(context.env())?,
                cache.clone(),
            ),
            usage: usage::Usage::new(usage_key.as_bytes()),
            config,
            cache,
            identity: peers::identity(context)?,
            ledger: peers::ledger(context)?,
            registry: peers::registry(context)?,
            whistle: peers::whistle(context)?,
        })
    }
}
