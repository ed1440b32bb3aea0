//! The admin HTTP port every process serves next to its gRPC port: `/livez` (the process
//! answers), `/readyz` (every readiness check passes, no background task failed, not draining;
//! else 503 naming what failed) and `/metrics` (Prometheus text).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::serve::ListenerExt as _;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::supervise::Failures;

/// How often readiness is re-checked for gRPC health.
const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A readiness check: `Err` says why the service is not ready.
pub(crate) type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What the readiness endpoints look at: failed tasks, the drain flag and the dependency checks.
pub(crate) struct Readiness {
    pub(crate) draining: AtomicBool,
    pub(crate) tasks: Failures,
    pub(crate) checks: Vec<(&'static str, CheckFn)>,
}

impl Readiness {
    /// Failed checks by name; empty means ready.
    pub(crate) async fn failures(&self) -> BTreeMap<&'static str, String> {
        let mut failed = BTreeMap::new();
        if let Some(task) = self.tasks.first() {
            failed.insert(task.task, task.cause);
            return failed;
        }
        if self.draining.load(Ordering::SeqCst) {
            failed.insert("shutdown", "draining".to_owned());
            return failed;
        }
        for (name, check) in &self.checks {
            let outcome = tokio::time::timeout(CHECK_TIMEOUT, check()).await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    failed.insert(*name, err);
                }
                Err(_) => {
                    failed.insert(*name, "timed out".to_owned());
                }
            }
        }
        failed
    }
}

pub(crate) async fn serve_admin(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) {
    let app = axum::Router::new()
        .route("/livez", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let readiness = readiness.clone();
                async move {
                    let failed = readiness.failures().await;
                    if failed.is_empty() {
                        (StatusCode::OK, Json(serde_ready(None))).into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(serde_ready(Some(failed))),
                        )
                            .into_response()
                    }
                }
            }),
        )
        .route("/metrics", axum::routing::get(metrics));
    if let Err(err) = axum::serve(listener.tap_io(|tcp| drop(tcp.set_nodelay(true))), app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %err, "admin server failed");
    }
}

/// `/metrics`: the process's metrics in the Prometheus text format (the admin port serves it; the
/// gateway may serve it on its public port too).
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

/// `{"status": "ready"}` or `{"status": "not ready", "failed": {...}}`.
fn serde_ready(failed: Option<BTreeMap<&'static str, String>>) -> serde_json::Value {
    match failed {
        None => serde_json::json!({ "status": "ready" }),
        Some(failed) => serde_json::json!({ "status": "not ready", "failed": failed }),
    }
}

pub(crate) async fn set_status(
    reporter: &HealthReporter,
    names: &[&'static str],
    status: ServingStatus,
) {
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

/// Re-checks readiness every `CHECK_INTERVAL` and turns gRPC health NOT_SERVING (and back) when it
/// changes, so load balancers that use gRPC health see what `/readyz` says.
pub(crate) async fn monitor_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    readiness: Arc<Readiness>,
    mut current: ServingStatus,
    stop: CancellationToken,
) {
    if readiness.checks.is_empty() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
        let failures = readiness.failures().await;
        if stop.is_cancelled() {
            return;
        }
        let status = if failures.is_empty() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if status != current {
            tracing::warn!(?status, ?failures, "readiness changed");
            set_status(&reporter, &names, status).await;
            current = status;
        }
    }
}
