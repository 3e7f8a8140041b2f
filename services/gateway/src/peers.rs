//! The services the gateway calls, each with the deadline a citizen waiting
//! in WeChat (5 seconds, all told) can afford.

use std::time::Duration;

use huimin_kit::{
    component::Context,
    config::ConfigError,
    peer::{PeerChannel, PeerClient, PeerSpec},
};
use huimin_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    ledger::v1::ledger_service_client::LedgerServiceClient,
    registry::v1::registry_service_client::RegistryServiceClient,
    whistle::v1::whistle_service_client::WhistleServiceClient,
};

pub type IdentityClient = PeerClient<IdentityServiceClient<PeerChannel>>;
pub type LedgerClient = PeerClient<LedgerServiceClient<PeerChannel>>;
pub type RegistryClient = PeerClient<RegistryServiceClient<PeerChannel>>;
pub type WhistleClient = PeerClient<WhistleServiceClient<PeerChannel>>;

/// Every call is bounded well under WeChat's 5 s; the webhook's own
/// deadline (which turns a slow answer into a later customer-service
/// message) is shorter still.
const CONNECT: Duration = Duration::from_secs(1);
const CALL: Duration = Duration::from_secs(3);

pub const IDENTITY: PeerSpec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL")
    .connect_timeout(CONNECT)
    .timeout(CALL);
pub const LEDGER: PeerSpec = PeerSpec::new("ledger", "HUIMIN_LEDGER_URL")
    .connect_timeout(CONNECT)
    .timeout(CALL);
pub const REGISTRY: PeerSpec = PeerSpec::new("registry", "HUIMIN_REGISTRY_URL")
    .connect_timeout(CONNECT)
    .timeout(CALL);
pub const WHISTLE: PeerSpec = PeerSpec::new("whistle", "HUIMIN_WHISTLE_URL")
    .connect_timeout(CONNECT)
    .timeout(CALL);

pub fn identity(context: &Context) -> Result<IdentityClient, ConfigError> {
    Ok(PeerClient::new(
        context.peer(IDENTITY)?,
        IdentityServiceClient::new,
    ))
}

pub fn ledger(context: &Context) -> Result<LedgerClient, ConfigError> {
    Ok(PeerClient::new(
        context.peer(LEDGER)?,
        LedgerServiceClient::new,
    ))
}

pub fn registry(context: &Context) -> Result<RegistryClient, ConfigError> {
    Ok(PeerClient::new(
        context.peer(REGISTRY)?,
        RegistryServiceClient::new,
    ))
}

pub fn whistle(context: &Context) -> Result<WhistleClient, ConfigError> {
    Ok(PeerClient::new(
        context.peer(WHISTLE)?,
        WhistleServiceClient::new,
    ))
}
