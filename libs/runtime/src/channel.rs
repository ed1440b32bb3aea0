//! gRPC client channels to other flightmesh services.
//!
//! Channels connect lazily (a service starts even if its dependencies are not up yet; calls fail
//! with UNAVAILABLE until they are), bound the connect time, and keep HTTP/2 connections alive so
//! that a dead peer is noticed without waiting for a request to time out.

use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Bounds how long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connecting channel to `url` (e.g. `http://127.0.0.1:50051`).
pub fn lazy_channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// A channel between services: [`lazy_channel`] with the caller's trace context on every call.
pub type MeshChannel = InterceptedService<Channel, PropagateTrace>;

/// [`lazy_channel`] wrapped in [`PropagateTrace`].
pub fn mesh_channel(url: &str) -> Result<MeshChannel, tonic::transport::Error> {
    Ok(InterceptedService::new(lazy_channel(url)?, PropagateTrace))
}

/// Puts the current span's `traceparent` on outgoing calls (when tracing is on), so the callee's
/// span joins the caller's trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTrace;

impl Interceptor for PropagateTrace {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = crate::trace::current_traceparent().and_then(|v| v.parse().ok()) {
            request
                .metadata_mut()
                .insert(crate::trace::TRACEPARENT, value);
        }
        Ok(request)
    }
}
