//! gRPC server bootstrap shared by every service: health, reflection, the
//! tower layers (timeout, concurrency limit, load shedding, request id,
//! observation, authorization), the admin HTTP port and graceful shutdown.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::FutureExt as _;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::{
    admin,
    auth::{AuthLayer, Policy, TokenVerifier},
    component::GrpcService,
    config::ServerConfig,
    db,
    deadline::DeadlineLayer,
    observe::ObserveLayer,
};

/// How often readiness re-checks the database.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The two bound sockets of a server. Bind first, then serve, so callers (and
/// tests on port 0) learn the real addresses before anything runs.
#[derive(Debug)]
pub struct Listeners {
    grpc: TcpListener,
    admin: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &ServerConfig) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(config.grpc_addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on HUIMIN_GRPC_ADDR {}: {e}",
                config.grpc_addr
            )
        })?;
        let admin = TcpListener::bind(config.admin_addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on HUIMIN_ADMIN_ADDR {}: {e}",
                config.admin_addr
            )
        })?;
        Ok(Self { grpc, admin })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }
}

/// A readiness source: a gRPC service is SERVING only while its database
/// answers; one without a database is SERVING while the process runs.
struct Probe {
    service_name: &'static str,
    pool: Option<PgPool>,
}

/// The services one process serves, gathered before it starts.
pub struct GrpcServer {
    routes: RoutesBuilder,
    probes: Vec<Probe>,
    policy: Policy,
}

impl Default for GrpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcServer {
    pub fn new() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            probes: Vec::new(),
            policy: Policy::new(),
        }
    }

    /// Adds a component's service and the pool its readiness depends on.
    pub(crate) fn add(mut self, service: GrpcService, pool: Option<PgPool>) -> Self {
        (service.add)(&mut self.routes);
        self.probes.push(Probe {
            service_name: service.name,
            pool,
        });
        self
    }

    /// Adds a component's access rules.
    pub(crate) fn allow(mut self, policy: Policy) -> Self {
        self.policy = self.policy.merge(policy);
        self
    }

    /// The access rules of every service added so far.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, keeps
    /// serving for the shutdown delay (while callers route elsewhere), stops
    /// accepting and drains in-flight calls for at most the grace period.
    pub async fn serve(
        mut self,
        config: &ServerConfig,
        listeners: Listeners,
        verifier: TokenVerifier,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        // Reflection lists what this process serves, not every contract in
        // `proto/`: a generic client must not find a service that answers NOT_FOUND.
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(huimin_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for probe in &self.probes {
                builder = builder.with_service_name(probe.service_name);
            }
            builder
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        self.routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        for probe in &self.probes {
            reporter
                .set_service_status(probe.service_name, ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;

        let ready = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let shutdown = shutdown.shared();
        // The signal, then the delay: when this server stops accepting.
        let delay = config.shutdown_delay;
        let stop_accepting = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.await;
                tokio::time::sleep(delay).await;
            }
        }
        .shared();

        let watcher = tokio::spawn(watch_readiness(
            self.probes,
            reporter.clone(),
            ready.clone(),
            stopping.clone(),
        ));
        // /metrics and /readyz (503 now) stay up through the delay too.
        let admin = tokio::spawn(admin::serve(
            listeners.admin,
            ready.clone(),
            stop_accepting.clone(),
        ));

        let long_running = self.policy.long_running_paths();
        let layers = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(ObserveLayer)
            .layer(DeadlineLayer::new(config.request_timeout, long_running))
            .layer(AuthLayer::new(verifier, self.policy));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            builder = builder.tls_config(tls.server())?;
        }
        let router = builder
            .concurrency_limit_per_connection(config.concurrency_limit)
            .load_shed(true)
            .layer(layers)
            .add_routes(self.routes.routes());

        let grpc_addr = listeners.grpc.local_addr()?;
        tracing::info!(%grpc_addr, "serving gRPC");

        // On the signal: NOT_SERVING first, so load balancers stop routing
        // here; keep answering through the delay (calls routed here before
        // they noticed would otherwise find the door shut), then let tonic
        // stop accepting and drain.
        let drain_signal = {
            let shutdown = shutdown.clone();
            let stop_accepting = stop_accepting.clone();
            let reporter = reporter.clone();
            let ready = ready.clone();
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.store(true, Ordering::SeqCst);
                ready.store(false, Ordering::SeqCst);
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "NOT_SERVING; still answering through the shutdown delay"
                );
                stop_accepting.await;
                tracing::info!("draining in-flight calls");
            }
        };
        let serve = router.serve_with_incoming_shutdown(
            // Without TCP_NODELAY a response's trailers wait ~40 ms for the
            // client's delayed ACK (Nagle), on every unary call.
            tonic::transport::server::TcpIncoming::from(listeners.grpc).with_nodelay(Some(true)),
            drain_signal,
        );
        let grace = config.shutdown_grace;
        let deadline = async move {
            stop_accepting.await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = serve => result.map_err(anyhow::Error::from),
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; abandoning unfinished calls");
                Ok(())
            }
        };
        watcher.abort();
        admin.abort();
        tracing::info!("server stopped");
        result
    }
}

/// Database connections of each service's pool, `open` and of those `idle`.
const POOL: &str = "db_pool_connections";

async fn watch_readiness(
    probes: Vec<Probe>,
    reporter: HealthReporter,
    ready: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
) {
    let mut last: Option<bool> = None;
    loop {
        if stopping.load(Ordering::SeqCst) {
            for probe in &probes {
                reporter
                    .set_service_status(probe.service_name, ServingStatus::NotServing)
                    .await;
            }
            return;
        }
        // All databases at once, so a check takes one timeout, not one per service.
        let results = futures::future::join_all(probes.iter().map(|probe| async {
            match &probe.pool {
                Some(pool) => db::ping(pool, Duration::from_secs(1)).await,
                None => true,
            }
        }))
        .await;
        let all_up = results.iter().all(|up| *up);
        for probe in &probes {
            let Some(pool) = &probe.pool else { continue };
            let (open, idle) = (pool.size(), pool.num_idle());
            metrics::gauge!(POOL, "service" => probe.service_name, "state" => "open")
                .set(f64::from(open));
            metrics::gauge!(POOL, "service" => probe.service_name, "state" => "idle")
                .set(idle as f64);
        }
        // Readiness first: whoever sees a service's new status finds /readyz agreeing.
        if !stopping.load(Ordering::SeqCst) {
            ready.store(all_up, Ordering::SeqCst);
        }
        for (probe, up) in probes.iter().zip(&results) {
            let status = if *up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter
                .set_service_status(probe.service_name, status)
                .await;
        }
        if stopping.load(Ordering::SeqCst) {
            continue;
        }
        let overall = if all_up {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", overall).await;
        if last != Some(all_up) {
            if all_up {
                tracing::info!("database reachable; SERVING");
            } else {
                tracing::warn!("database unreachable; NOT_SERVING");
            }
            last = Some(all_up);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
