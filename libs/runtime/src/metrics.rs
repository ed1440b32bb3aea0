//! Prometheus metrics: one recorder per process (rendered by every admin port's `/metrics`), and
//! RED metrics (rate, errors, duration) for every gRPC call a service answers.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::series::Series;

/// Latency buckets in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Money buckets for `*_amount` histograms (prices).
const AMOUNT_BUCKETS: &[f64] = &[
    10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_amount".into()), AMOUNT_BUCKETS)
            })
            .expect("bucket lists are non-empty constants");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; then ours renders nothing, which the
        // admin port's tests would show at once.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// A metric a service exports, declared once at start.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Prometheus name.
    pub name: &'static str,
    /// Series kind.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Whether its series carry labels (then they appear with their first event).
    pub labelled: bool,
}

impl Metric {
    /// A counter without labels.
    #[must_use]
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Counter,
            help,
            labelled: false,
        }
    }

    /// A gauge without labels.
    #[must_use]
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Gauge,
            help,
            labelled: false,
        }
    }

    /// A histogram without labels.
    #[must_use]
    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Histogram,
            help,
            labelled: false,
        }
    }

    /// The same metric, with labels.
    #[must_use]
    pub const fn labelled(self) -> Self {
        Self {
            labelled: true,
            ..self
        }
    }
}

/// The RED metrics every gRPC service exports (see [`GrpcMetricsLayer`]).
pub const GRPC_METRICS: &[Metric] = &[
    Metric::counter(
        "grpc_server_handled_total",
        "RPCs answered, by service, method and status code",
    )
    .labelled(),
    Metric::histogram(
        "grpc_server_handling_seconds",
        "RPC latency, by service and method",
    )
    .labelled(),
];

/// Declares `metrics`: their help text, and label-less counters at zero, so that dashboards and
/// alerts (`rate(stats_dead_letters_total[5m]) > 0`) see a series before the first event.
pub fn declare(metrics: &[Metric]) {
    handle();
    for metric in metrics {
        match metric.kind {
            Kind::Counter => {
                metrics::describe_counter!(metric.name, metric.help);
                if !metric.labelled {
                    metrics::counter!(metric.name).increment(0);
                }
            }
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// Tower layer recording `grpc_server_handled_total` and `grpc_server_handling_seconds` by
/// service, method and status code (the names the Go gRPC ecosystem uses), and running each
/// call in an `rpc` span: the caller's trace context (`traceparent` metadata) is its parent and
/// the caller's correlation id is on it, so every log line of the call carries both.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    handles: Arc<Series<CallHandles>>,
}

impl Default for GrpcMetricsLayer {
    fn default() -> Self {
        Self {
            handles: Arc::new(Series::new()),
        }
    }
}

/// The two series one call records into, per service, method and code.
type CallHandles = (metrics::Counter, metrics::Histogram);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            handles: self.handles.clone(),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    handles: Arc<Series<CallHandles>>,
}

/// The `grpc_code` label: the code's name as `Debug` writes it, without formatting per call.
const fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = split_grpc_path(request.uri().path());
        let started = Instant::now();
        let correlation_id = request
            .headers()
            .get(crate::trace::CORRELATION_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "rpc",
            otel.kind = "server",
            rpc.service = %service,
            rpc.method = %method,
            correlation_id = %correlation_id,
        );
        crate::trace::set_parent(&span, &crate::trace::HeaderExtractor(request.headers()));
        let response = span.in_scope(|| self.inner.call(request));
        let handles = self.handles.clone();
        Box::pin(
            async move {
                let result = response.await;
                // A failed call answers trailers-only, with grpc-status in the headers; a successful
                // unary call sends it in trailers after the body, so "absent here" means OK.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes())),
                    Err(_) => tonic::Code::Unknown,
                };
                let code = code_label(code);
                let mut key = String::with_capacity(service.len() + method.len() + code.len() + 2);
                for part in [service.as_str(), "/", method.as_str(), " ", code] {
                    key.push_str(part);
                }
                let (handled, handling) = handles.get(&key, || {
                    let labels = [
                        ("grpc_service", metrics::SharedString::from(service.clone())),
                        ("grpc_method", metrics::SharedString::from(method.clone())),
                        ("grpc_code", metrics::SharedString::const_str(code)),
                    ];
                    (
                        metrics::counter!("grpc_server_handled_total", &labels),
                        metrics::histogram!("grpc_server_handling_seconds", &labels[..2]),
                    )
                });
                handled.increment(1);
                handling.record(started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_grpc_path(path: &str) -> (String, String) {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (path.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_grpc_paths() {
        assert_eq!(
            split_grpc_path("/flightmesh.flights.v1.FlightService/GetFlight"),
            (
                "flightmesh.flights.v1.FlightService".to_owned(),
                "GetFlight".to_owned()
            )
        );
    }

    /// Dashboards and alert rules match the names `Debug` wrote before (`Unavailable`, …).
    #[test]
    fn code_labels_are_the_codes_debug_names() {
        for value in 0..=16 {
            let code = tonic::Code::from_i32(value);
            assert_eq!(code_label(code), format!("{code:?}"));
        }
    }
}
