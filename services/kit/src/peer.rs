//! Channels to peer services, built one way for every component: the URL
//! from configuration (a missing one is an error at start), the caller's
//! service token and the trace context on every call, connect and call
//! timeouts, and retries of calls that never reached the peer, within a
//! budget so a struggling peer is not hammered by retry storms.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret as _, SecretString};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::interceptor::InterceptedService,
    transport::Channel,
};
use tower::retry::budget::{Budget as _, TpsBudget};

use crate::{component::TokenAuthority, config::ConfigError};

/// How a component reaches one peer.
#[derive(Debug, Clone, Copy)]
pub struct PeerSpec {
    /// The peer's component name (`identity`): when it runs in the same
    /// process, its address is this process's own.
    pub service: &'static str,
    /// The variable holding its URL, e.g. `HUIMIN_IDENTITY_URL`.
    pub url_var: &'static str,
    /// Whether calls carry the caller's service token.
    pub with_token: bool,
    pub connect_timeout: Duration,
    /// The longest one call may take, retries included.
    pub timeout: Duration,
    /// Retries of a call the peer never received (connection refused or reset).
    pub retries: u32,
}

impl PeerSpec {
    /// A peer called with the service token, 2 s to connect, 5 s a call, two retries.
    pub const fn new(service: &'static str, url_var: &'static str) -> Self {
        Self {
            service,
            url_var,
            with_token: true,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 2,
        }
    }

    /// Calls only public RPCs: no token.
    pub const fn without_token(mut self) -> Self {
        self.with_token = false;
        self
    }

    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// The service token a peer's calls carry.
#[derive(Clone)]
pub enum PeerToken {
    /// Configured (`HUIMIN_SERVICE_TOKEN`), used as given until it expires.
    Fixed(SecretString),
    /// Minted in this process for this one peer (audience = the peer), and
    /// minted again when half its lifetime has passed: an in-process token
    /// lives [`crate::component::MINTED_TOKEN_TTL`], not the process's life.
    Minted {
        authority: Arc<dyn TokenAuthority>,
        sub: &'static str,
        audience: &'static str,
    },
}

/// The token as a header value, refreshed when it was minted here.
enum AuthHeader {
    Fixed(MetadataValue<Ascii>),
    Minted {
        authority: Arc<dyn TokenAuthority>,
        sub: &'static str,
        audience: &'static str,
        current: Mutex<(MetadataValue<Ascii>, Instant)>,
    },
}

fn bearer(token: &SecretString) -> Result<MetadataValue<Ascii>, ConfigError> {
    format!("Bearer {}", token.expose_secret())
        .parse::<MetadataValue<Ascii>>()
        .map_err(|_| ConfigError::Malformed {
            name: "HUIMIN_SERVICE_TOKEN",
            reason: "not a token".to_owned(),
        })
}

impl AuthHeader {
    fn new(token: PeerToken) -> Result<Self, ConfigError> {
        Ok(match token {
            PeerToken::Fixed(token) => Self::Fixed(bearer(&token)?),
            PeerToken::Minted {
                authority,
                sub,
                audience,
            } => {
                let first = bearer(&authority.service_token(sub, audience))?;
                Self::Minted {
                    authority,
                    sub,
                    audience,
                    current: Mutex::new((first, Instant::now())),
                }
            }
        })
    }

    fn value(&self) -> MetadataValue<Ascii> {
        match self {
            Self::Fixed(value) => value.clone(),
            Self::Minted {
                authority,
                sub,
                audience,
                current,
            } => {
                let mut current = current.lock().unwrap_or_else(|e| e.into_inner());
                if current.1.elapsed() > crate::component::MINTED_TOKEN_TTL / 2
                    && let Ok(fresh) = bearer(&authority.service_token(sub, audience))
                {
                    *current = (fresh, Instant::now());
                }
                current.0.clone()
            }
        }
    }
}

/// Adds the service token (when there is one) and the W3C trace context to
/// every outgoing call. A call that already carries an authorization (a
/// staff member's own, forwarded so the peer applies their scope and records
/// the read as theirs) keeps it.
#[derive(Clone)]
pub struct PeerAuth(Option<Arc<AuthHeader>>);

impl tonic::service::Interceptor for PeerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self
            .0
            .as_ref()
            .filter(|_| !request.metadata().contains_key("authorization"))
        {
            request
                .metadata_mut()
                .insert("authorization", token.value());
        }
        crate::telemetry::inject_trace_context(request.metadata_mut());
        Ok(request)
    }
}

/// The transport generated clients are built on: `XServiceClient::new(peer.channel())`.
pub type PeerChannel = InterceptedService<Channel, PeerAuth>;

/// A configured peer: its channel and its retry budget.
#[derive(Clone)]
pub struct Peer {
    channel: PeerChannel,
    service: &'static str,
    retries: u32,
    timeout: Duration,
    budget: Arc<TpsBudget>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Failed attempts retried, by peer.
const RETRIES: &str = "peer_retries_total";

impl Peer {
    /// A lazily connecting channel to `url`; fails only on a malformed URL or token.
    pub fn connect(
        spec: &PeerSpec,
        url: &str,
        token: Option<PeerToken>,
        tls: Option<&crate::tls::TlsSettings>,
    ) -> Result<Self, ConfigError> {
        let mut endpoint =
            Channel::from_shared(url.to_owned()).map_err(|_| ConfigError::Malformed {
                name: spec.url_var,
                reason: "not a URL".to_owned(),
            })?;
        if url.starts_with("https://") {
            let tls = tls.ok_or(ConfigError::Malformed {
                name: spec.url_var,
                reason: "an https URL needs HUIMIN_TLS_CA (and this process's HUIMIN_TLS_CERT/KEY)"
                    .to_owned(),
            })?;
            endpoint = endpoint
                .tls_config(tls.client())
                .map_err(|e| ConfigError::Malformed {
                    name: spec.url_var,
                    reason: format!("TLS: {e}"),
                })?;
        }
        let channel = endpoint
            .connect_timeout(spec.connect_timeout)
            .timeout(spec.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let token = token.map(AuthHeader::new).transpose()?.map(Arc::new);
        Ok(Self {
            channel: InterceptedService::new(channel, PeerAuth(token)),
            service: spec.service,
            retries: spec.retries,
            timeout: spec.timeout,
            // Retries may add at most a fifth to the calls made (and ten a
            // second regardless), measured over the last ten seconds.
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
        })
    }

    /// The channel for a generated client.
    pub fn channel(&self) -> PeerChannel {
        self.channel.clone()
    }

    /// Runs `call`, again (after a short backoff) when it failed before the
    /// peer received it, as long as the retry budget allows. Only for calls
    /// safe to repeat: every peer call huimin makes is a read.
    pub async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let attempts = async {
            let mut attempt = 0;
            loop {
                match call().await {
                    Err(status) if attempt < self.retries && never_arrived(&status) => {
                        if !self.budget.withdraw() {
                            return Err(status);
                        }
                        metrics::counter!(RETRIES, "peer" => self.service).increment(1);
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                    }
                    result => {
                        self.budget.deposit();
                        return result;
                    }
                }
            }
        };
        // The spec's timeout bounds the call, retries included.
        tokio::time::timeout(self.timeout, attempts)
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("peer call timed out")))
    }
}

/// A generated client together with its peer's retry budget. It derefs to
/// the client, so `peer.clone().some_rpc(request)` calls once, and
/// [`PeerClient::call`] calls with retries.
#[derive(Clone, Debug)]
pub struct PeerClient<C> {
    client: C,
    peer: Peer,
}

impl<C: Clone> PeerClient<C> {
    /// Builds the generated client on the peer's channel.
    pub fn new(peer: Peer, make: impl FnOnce(PeerChannel) -> C) -> Self {
        Self {
            client: make(peer.channel()),
            peer,
        }
    }

    /// Calls `rpc` on a copy of the client, retried as [`Peer::retrying`] does.
    pub async fn call<T, F, Fut>(&self, mut rpc: F) -> Result<T, tonic::Status>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.peer.retrying(|| rpc(self.client.clone())).await
    }
}

impl<C> std::ops::Deref for PeerClient<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.client
    }
}

impl<C> std::ops::DerefMut for PeerClient<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.client
    }
}

/// Whether a call failed without reaching the peer's handler: tonic reports
/// a refused or broken connection as UNAVAILABLE carrying the transport
/// error as its source. An UNAVAILABLE the peer itself answered (its
/// database is down, say) comes off the wire without one, and is not retried:
/// the peer did the work, and retrying it would only add load.
fn never_arrived(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && std::error::Error::source(status).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> tonic::Status {
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        status
    }

    #[tokio::test]
    async fn calls_that_never_arrived_are_retried_within_the_limit() {
        let spec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL");
        let peer = Peer::connect(&spec, "http://127.0.0.1:1", None, None).expect("valid url");
        let mut calls = 0;
        let result: Result<(), _> = peer
            .retrying(|| {
                calls += 1;
                async { Err(refused()) }
            })
            .await;
        assert_eq!(
            result.expect_err("always down").code(),
            tonic::Code::Unavailable
        );
        assert_eq!(calls, 3, "one call and two retries");
    }

    #[tokio::test]
    async fn refusals_and_the_peers_own_unavailable_are_not_retried() {
        let spec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL");
        let peer = Peer::connect(&spec, "http://127.0.0.1:1", None, None).expect("valid url");
        for answer in [
            tonic::Status::permission_denied("no"),
            tonic::Status::unavailable("database down"),
        ] {
            let mut calls = 0;
            let _ = peer
                .retrying(|| {
                    calls += 1;
                    let answer = answer.clone();
                    async move { Err::<(), _>(answer) }
                })
                .await;
            assert_eq!(calls, 1, "{answer:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_and_the_timeout_bounds_it_all() {
        let spec = PeerSpec::new("identity", "HUIMIN_IDENTITY_URL").timeout(Duration::from_secs(3));
        let peer = Peer::connect(&spec, "http://127.0.0.1:1", None, None).expect("valid url");
        let client = PeerClient::new(peer, tonic_health::pb::health_client::HealthClient::new);
        let mut calls = 0;
        let started = std::time::Instant::now();
        let result = client
            .call(|mut health| {
                calls += 1;
                async move {
                    health
                        .check(tonic_health::pb::HealthCheckRequest::default())
                        .await
                }
            })
            .await;
        assert_eq!(
            result.expect_err("nothing listens").code(),
            tonic::Code::Unavailable
        );
        assert_eq!(calls, 3, "a refused connection never reached a handler");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_malformed_url_names_its_variable() {
        let spec = PeerSpec::new("ledger", "HUIMIN_LEDGER_URL");
        let error = Peer::connect(&spec, "not a url\n", None, None).expect_err("malformed");
        assert!(error.to_string().contains("HUIMIN_LEDGER_URL"), "{error}");
    }
}
