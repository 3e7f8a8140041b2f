//! Phase 2, cached person lookups: `LedgerService/PersonPayments` as the gateway for openids
//! bound to a few persons (so pages come from the cache), against an empty tonic handler —
//! `grpc.health.v1.Health/Check` from tonic-health on its own port — driven by the same
//! closed-loop client at the same concurrency over the same number of HTTP/2 connections.

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use huimin_kit::auth::Role;
use huimin_proto::{
    identity::v1::{
        BindOpenIdRequest, ResolveOpenIdRequest, identity_service_client::IdentityServiceClient,
    },
    ledger::v1::{PersonPaymentsRequest, ledger_service_client::LedgerServiceClient},
};
use indicatif::ProgressBar;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, server::TcpIncoming},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{progress, roll::SamplePerson, scratch::RunningApp};

/// How a load is applied.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Calls in flight at any moment (closed loop: each worker calls again when answered).
    pub concurrency: usize,
    /// HTTP/2 connections the workers share.
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What a load measured.
#[derive(Debug, Clone)]
pub struct Load {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Opens `shape.connections` connections to `addr` and keeps `shape.concurrency` calls of
/// `call` in flight; counts calls started after the warm-up and answered before the end.
pub async fn drive<F, Fut>(
    label: &str,
    addr: SocketAddr,
    shape: Shape,
    call: F,
) -> anyhow::Result<Load>
where
    F: Fn(Channel, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let mut channels = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections.max(1) {
        channels.push(crate::scratch::connect(addr).await?);
    }
    closed_loop(label, channels, shape, call).await
}

/// Keeps `shape.concurrency` calls of `call` in flight, worker `i` on `clients[i % len]`
/// (closed loop: each worker calls again when answered); counts calls started after the
/// warm-up and answered before the end. Any failed call fails the load.
pub async fn closed_loop<C, F, Fut, E>(
    label: &str,
    clients: Vec<C>,
    shape: Shape,
    call: F,
) -> anyhow::Result<Load>
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display + Send + 'static,
{
    let spinner = progress::spinner(&format!(
        "{label}: {} in flight, {} s warm-up + {} s",
        shape.concurrency,
        shape.warmup.as_secs(),
        shape.measure.as_secs()
    ));
    closed_loop_shown(label, clients, shape, call, spinner).await
}

/// [`closed_loop`] under a progress line the caller keeps (and may write to meanwhile, as the
/// soak does with its memory samples); the line is cleared when the load ends.
pub async fn closed_loop_shown<C, F, Fut, E>(
    label: &str,
    clients: Vec<C>,
    shape: Shape,
    call: F,
    spinner: ProgressBar,
) -> anyhow::Result<Load>
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display + Send + 'static,
{
    if clients.is_empty() {
        bail!("{label}: no client to drive the load with");
    }
    let call = Arc::new(call);
    let started = Instant::now();
    let measured_from = started + shape.warmup;
    let end = measured_from + shape.measure;
    let workers: Vec<JoinHandle<Result<Vec<Duration>, E>>> = (0..shape.concurrency.max(1))
        .map(|worker| {
            let client = clients[worker % clients.len()].clone();
            let call = Arc::clone(&call);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(64 * 1024);
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        return Ok(latencies);
                    }
                    call(client.clone(), worker).await?;
                    let answered = Instant::now();
                    if sent >= measured_from && answered <= end {
                        latencies.push(answered - sent);
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        let measured = worker
            .await
            .context("a load worker panicked")?
            .map_err(|error| anyhow::anyhow!("{label}: a call failed: {error}"))?;
        latencies.extend(measured);
    }
    spinner.finish_and_clear();
    if latencies.is_empty() {
        bail!("{label}: no call completed within the measured window");
    }
    latencies.sort_unstable();
    Ok(Load {
        per_sec: latencies.len() as f64 / shape.measure.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
    })
}

/// The nearest-rank percentile of sorted, non-empty `values`.
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// `Bearer <token>` as a metadata value.
fn bearer(token: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    format!("Bearer {token}")
        .parse()
        .context("token is not ASCII")
}

/// Binds one openid per sample person, as the gateway does after a citizen proves who they
/// are; returns `(openid, person key)` pairs.
pub async fn bind_openids(
    app: &RunningApp,
    persons: &[SamplePerson],
) -> anyhow::Result<Vec<(String, String)>> {
    let gateway = bearer(&app.token(Role::Gateway))?;
    let mut identity = IdentityServiceClient::new(app.channel().await?);
    let mut bound = Vec::with_capacity(persons.len());
    for (i, person) in persons.iter().enumerate() {
        let openid = format!("bench-openid-{i}");
        let mut request = tonic::Request::new(BindOpenIdRequest {
            openid: openid.clone(),
            id_number: person.id_number.clone(),
            name: person.name.clone(),
        });
        request
            .metadata_mut()
            .insert("authorization", gateway.clone());
        let response = identity
            .bind_open_id(request)
            .await
            .context("BindOpenId for a sample person")?
            .into_inner();
        let key = response
            .person
            .map(|p| p.person_key)
            .context("BindOpenId answered without the person")?;
        bound.push((openid, key));
    }
    if bound.is_empty() {
        bail!("the roll has no persons to look up");
    }
    Ok(bound)
}

/// `PersonPayments` for the bound openids, round robin, as `role` (the openid is sent
/// whatever the role; only the gateway's calls check it).
pub async fn person_payments(
    app: &RunningApp,
    role: Role,
    bound: &[(String, String)],
    shape: Shape,
) -> anyhow::Result<Load> {
    let token = bearer(&app.token(role))?;
    let bound = Arc::new(bound.to_vec());
    let call = move |channel: Channel, worker: usize| {
        let (openid, person_key) = bound[worker % bound.len()].clone();
        let token = token.clone();
        async move {
            let mut request = tonic::Request::new(PersonPaymentsRequest {
                person_key,
                openid,
                page: None,
            });
            request.metadata_mut().insert("authorization", token);
            let page = LedgerServiceClient::new(channel)
                .person_payments(request)
                .await?
                .into_inner();
            if page.payments.is_empty() {
                return Err(Status::internal("a sample person has no payments"));
            }
            Ok(())
        }
    };
    drive(
        &format!("huimin PersonPayments as {role}"),
        app.grpc_addr,
        shape,
        call,
    )
    .await
}

/// The steps of a gateway lookup measured one call at a time, to show which one costs what:
/// `(what, p50)` for huimin's own `Health/Check` (the server's layers and nothing else),
/// identity's `ResolveOpenId` (the hop ledger makes for every gateway call), `PersonPayments`
/// as an admin (no openid check) and as the gateway.
pub async fn path(
    app: &RunningApp,
    bound: &[(String, String)],
) -> anyhow::Result<Vec<(&'static str, Duration)>> {
    let one_at_a_time = Shape {
        concurrency: 1,
        connections: 1,
        warmup: Duration::from_millis(300),
        measure: Duration::from_millis(1500),
    };
    let health = drive(
        "huimin Health/Check",
        app.grpc_addr,
        one_at_a_time,
        health_check,
    )
    .await?;
    let gateway = bearer(&app.token(Role::Gateway))?;
    let openid = bound
        .first()
        .map(|(openid, _)| openid.clone())
        .unwrap_or_default();
    let resolve = move |channel: Channel, _worker: usize| {
        let mut request = tonic::Request::new(ResolveOpenIdRequest {
            openid: openid.clone(),
        });
        request
            .metadata_mut()
            .insert("authorization", gateway.clone());
        async move {
            IdentityServiceClient::new(channel)
                .resolve_open_id(request)
                .await
                .map(|_| ())
        }
    };
    let resolve = drive(
        "identity ResolveOpenId",
        app.grpc_addr,
        one_at_a_time,
        resolve,
    )
    .await?;
    let admin = person_payments(app, Role::Admin, bound, one_at_a_time).await?;
    let gateway = person_payments(app, Role::Gateway, bound, one_at_a_time).await?;
    Ok(vec![
        (
            "`Health/Check` on huimin's server (its layers, no handler work)",
            health.p50,
        ),
        (
            "identity `ResolveOpenId` as gateway (Redis-cached)",
            resolve.p50,
        ),
        (
            "`PersonPayments` as admin (no openid check, cached page)",
            admin.p50,
        ),
        (
            "`PersonPayments` as gateway (the measured call)",
            gateway.p50,
        ),
    ])
}

/// One `Health/Check` for the server as a whole: answered from a map, no I/O.
async fn health_check(channel: Channel, _worker: usize) -> Result<(), Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

/// The empty handler: tonic-health's `Health/Check` on its own port, served the way a stock
/// `Server::builder().serve(addr)` serves (no layers, `TCP_NODELAY` on accepted sockets).
pub struct EmptyServer {
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl EmptyServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the empty handler's port")?;
        let addr = listener
            .local_addr()
            .context("the empty handler's address")?;
        // `serve_with_incoming` ignores the builder's `tcp_nodelay`; the incoming sets it.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = signal.await;
                }),
        );
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    pub async fn load(&self, shape: Shape) -> anyhow::Result<Load> {
        drive("empty handler Health/Check", self.addr, shape, health_check).await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .context("the empty handler's task panicked")?
            .context("the empty handler's server failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
    }
}
