//! The gRPC side of a [`super::Host`]: health and reflection, the drain, the server itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

use super::{CALL_GRACE, HostError, LIVENESS_SERVICE};
use crate::admin::{Readiness, set_status};
use crate::metrics::GrpcMetricsLayer;
use crate::shed::{ShedConfig, ShedLayer};

/// Health at start: `liveness` SERVING, readiness (the empty name and every service) as the
/// checks say, and each service's shed counter at zero (for `rate()` alerts). Returns the
/// readiness names and their status.
pub(super) async fn announce_health(
    reporter: &tonic_health::server::HealthReporter,
    service_names: &[&'static str],
    readiness: &Readiness,
) -> (Vec<&'static str>, ServingStatus) {
    reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    for service in service_names {
        metrics::counter!("grpc_server_shed_total", "grpc_service" => *service).increment(0);
    }
    let mut readiness_names = vec![""];
    readiness_names.extend(service_names.iter().copied());
    let initially = if readiness.failures().await.is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    set_status(reporter, &readiness_names, initially).await;
    (readiness_names, initially)
}

/// What happens between the stop and the gRPC listener's closing.
pub(super) struct Drain {
    pub(super) name: &'static str,
    pub(super) delay: Duration,
    pub(super) readiness: Arc<Readiness>,
    pub(super) reporter: tonic_health::server::HealthReporter,
    pub(super) readiness_names: Vec<&'static str>,
    pub(super) monitor_stop: CancellationToken,
    pub(super) draining: CancellationToken,
    pub(super) drained: CancellationToken,
}

impl Drain {
    /// From `stop`: NOT_SERVING (gRPC health and `/readyz`) for the drain delay, then done.
    pub(super) async fn run(self, stop: CancellationToken) {
        stop.cancelled().await;
        self.readiness.draining.store(true, Ordering::SeqCst);
        self.draining.cancel();
        self.monitor_stop.cancel();
        set_status(
            &self.reporter,
            &self.readiness_names,
            ServingStatus::NotServing,
        )
        .await;
        tracing::info!(service = self.name, drain_delay = ?self.delay, "draining: health is NOT_SERVING");
        tokio::time::sleep(self.delay).await;
        tracing::info!(service = self.name, "closing the gRPC listener");
        self.drained.cancel();
    }
}

/// The health service and both reflection versions on `routes`; the health reporter.
pub(super) fn add_health_and_reflection(
    routes: &mut RoutesBuilder,
) -> Result<tonic_health::server::HealthReporter, HostError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    routes.add_service(health_service);
    // Both reflection versions: grpcurl and grpcui today speak v1, but Google's Python
    // `grpcio-reflection`, Postman, Kreya, Evans and older grpcurl speak only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(flightmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    routes.add_service(reflection().build_v1()?);
    routes.add_service(reflection().build_v1alpha()?);
    Ok(reporter)
}

/// Serves gRPC on `listener` until `drain` completes, then lets in-flight calls finish for at
/// most `CALL_GRACE` after `drained`: the graceful shutdown waits for every connection, and one
/// that never finishes would keep the process from exiting (seen in the rolling-restart test: a
/// stats worker still up 30 s after SIGTERM).
pub(super) async fn serve_grpc(
    name: &'static str,
    listener: TcpListener,
    routes: RoutesBuilder,
    shed: ShedConfig,
    drain: impl Future<Output = ()> + Send,
    drained: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // `serve_with_incoming` ignores the builder's TCP settings: set TCP_NODELAY on each
    // accepted socket ourselves, or small responses wait on Nagle + delayed ACK (~40 ms).
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    });
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // Metrics outside the shedding: a shed call is counted as UNAVAILABLE.
        .layer(GrpcMetricsLayer::default())
        .layer(ShedLayer::new(shed))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, drain);
    let deadline = async {
        drained.await;
        tokio::time::sleep(CALL_GRACE).await;
    };
    tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(
                service = name,
                grace = ?CALL_GRACE,
                "calls still in flight after the drain and its grace; closing their connections"
            );
            Ok(())
        }
    }
}
