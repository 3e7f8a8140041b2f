//! The per-request layer: a server span joined to the caller's trace, and
//! Prometheus request counts and latencies by method and gRPC code.

use std::{
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::telemetry::extract_trace_context;

const REQUESTS: &str = "grpc_server_requests_total";
const DURATION: &str = "grpc_server_request_duration_seconds";

/// How often recorded histogram samples are folded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(DURATION.to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .expect("bucket list is non-empty")
            .install_recorder()
            .expect("the recorder is installed once, guarded by OnceLock");
        spawn_upkeep(handle.clone());
        handle
    })
}

/// Folds the histograms' raw samples into their buckets every [`UPKEEP_EVERY`].
///
/// The recorder keeps every `histogram!` sample (8 bytes, in blocks of 64) until something
/// drains it; `install_recorder`, unlike `install`, starts nothing that does, so only a
/// `/metrics` scrape did. Unscraped — a laptop, a county without Prometheus, a soak — each
/// gRPC call kept its duration forever: `huimin serve all` grew about 21 bytes a public call
/// (one timed call each, measured by `scripts/soak`), in the allocator's 2 MB steps (issue 13).
/// A plain thread rather than a task: the recorder is process-wide and lives as long as the
/// process, needs no runtime, and is shared by every app a test process builds; draining
/// takes microseconds.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        // Scrapes still drain; without them memory grows with every call.
        tracing::error!(%error, "cannot start the metrics upkeep thread");
    }
}

/// Wraps a gRPC service with a span and metrics per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        // Make sure the recorder exists before the first request is counted.
        let _ = prometheus();
        Observe { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let span = tracing::info_span!(
            "grpc_request",
            otel.name = %method,
            otel.kind = "server",
            rpc.method = %method,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            grpc.code = tracing::field::Empty,
        );
        let _ = span.set_parent(extract_trace_context(request.headers()));
        // The trace id in every log line of the request ties logs to traces.
        crate::telemetry::record_trace_id(&span);
        let started = Instant::now();
        let response = self.inner.call(request).instrument(span.clone());
        Box::pin(async move {
            let result = response.await;
            // Unary errors are trailers-only responses whose grpc-status is a
            // header; a response without it began successfully. A stream that
            // fails after its first message is counted as OK here.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or("OK", code_name),
                Err(_) => "TRANSPORT_ERROR",
            };
            span.record("grpc.code", code);
            tracing::debug!(parent: &span, code, elapsed_ms = started.elapsed().as_millis() as u64, "request finished");
            metrics::counter!(REQUESTS, "method" => method.clone(), "code" => code).increment(1);
            metrics::histogram!(DURATION, "method" => method, "code" => code)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
