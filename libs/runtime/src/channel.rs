//! gRPC client channels to other flightmesh services.
//!
//! Channels connect lazily (a service starts even if its dependencies are not up yet; calls fail
//! with UNAVAILABLE until they are), bound the connect time, and keep HTTP/2 connections alive so
//! that a dead peer is noticed without waiting for a request to time out.
//!
//! An upstream is named by URL, `http://host:port`, or by a gRPC DNS target,
//! `dns:///host:port`. The first opens one HTTP/2 connection to whatever the name resolves to
//! once; behind a Kubernetes ClusterIP Service that pins every request to one pod, because the
//! Service balances connections, not requests. The second re-resolves the name every
//! [`RESOLVE_INTERVAL`] and spreads requests over every address (power of two choices): point it
//! at a headless Service and each request goes to a live pod, new replicas included.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// Bounds how long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a `dns:///` target is resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// The scheme of a target balanced over every address its name resolves to.
const DNS_SCHEME: &str = "dns:///";

/// Why a channel could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The URL is not `http(s)://host:port` nor `dns:///host:port`.
    #[error("invalid upstream {url}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// tonic refused the endpoint.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}

/// A lazily connecting channel to `url`: `http://127.0.0.1:50051`, or `dns:///flights:50051`
/// to balance requests over every address of the name (see the module docs).
///
/// # Errors
/// If `url` is malformed, or a `dns:///` target is made outside a tokio runtime.
pub fn lazy_channel(url: &str) -> Result<Channel, ChannelError> {
    match url.strip_prefix(DNS_SCHEME) {
        Some(target) => balanced_channel(url, target),
        None => Ok(endpoint(url)?.connect_lazy()),
    }
}

fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// A channel whose endpoints follow what `target` (`host:port`) resolves to.
fn balanced_channel(url: &str, target: &str) -> Result<Channel, ChannelError> {
    let invalid = |reason| ChannelError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected dns:///host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number"))?;
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| invalid("needs a tokio runtime"))?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let resolve = |host: String, port: u16| async move {
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(Iterator::collect)
    };
    runtime.spawn(follow(
        host.to_owned(),
        port,
        resolve,
        RESOLVE_INTERVAL,
        changes,
    ));
    Ok(channel)
}

/// Keeps the balancer's endpoints equal to the name's addresses until the channel is dropped.
async fn follow<R, F>(
    host: String,
    port: u16,
    resolve: R,
    interval: Duration,
    changes: tokio::sync::mpsc::Sender<Change<SocketAddr, Endpoint>>,
) where
    R: Fn(String, u16) -> F,
    F: Future<Output = std::io::Result<HashSet<SocketAddr>>>,
{
    let mut current: HashSet<SocketAddr> = HashSet::new();
    loop {
        match resolve(host.clone(), port).await {
            Ok(resolved) => {
                for gone in current.difference(&resolved) {
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
                for new in resolved.difference(&current) {
                    let Ok(endpoint) = endpoint(&format!("http://{new}")) else {
                        continue;
                    };
                    if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                        return;
                    }
                }
                if resolved != current {
                    tracing::debug!(%host, addresses = resolved.len(), "upstream addresses changed");
                }
                current = resolved;
            }
            // Keep the last known addresses: a DNS hiccup must not empty the balancer.
            Err(err) => tracing::warn!(%host, error = %err, "could not resolve an upstream"),
        }
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Whether `url` names an upstream this module can connect to (for configuration checks).
#[must_use]
pub fn is_upstream_url(url: &str) -> bool {
    ["http://", "https://", DNS_SCHEME]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// A channel between services: [`lazy_channel`] with the caller's trace context on every call.
pub type MeshChannel = InterceptedService<Channel, PropagateTrace>;

/// [`lazy_channel`] wrapped in [`PropagateTrace`].
///
/// # Errors
/// As [`lazy_channel`].
pub fn mesh_channel(url: &str) -> Result<MeshChannel, ChannelError> {
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    /// A health server whose empty service name reports `status`; returns its address.
    async fn server(status: tonic_health::ServingStatus) -> SocketAddr {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter.set_service_status("", status).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    async fn answers(channel: &Channel, n: usize) -> HashSet<i32> {
        let mut seen = HashSet::new();
        for _ in 0..n {
            let answer = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap();
            seen.insert(answer.into_inner().status);
        }
        seen
    }

    #[tokio::test]
    async fn a_dns_target_spreads_requests_over_every_address_and_follows_changes() {
        let serving = server(tonic_health::ServingStatus::Serving).await;
        let not_serving = server(tonic_health::ServingStatus::NotServing).await;
        let addresses = Arc::new(Mutex::new(HashSet::from([serving, not_serving])));
        let resolver = addresses.clone();
        let resolve = move |_host: String, _port: u16| {
            let current = resolver.lock().unwrap().clone();
            async move { Ok(current) }
        };
        let (channel, changes) = Channel::balance_channel::<SocketAddr>(8);
        tokio::spawn(follow(
            "upstream".to_owned(),
            1,
            resolve,
            Duration::from_millis(20),
            changes,
        ));

        // Both addresses answer (1 = SERVING, 2 = NOT_SERVING).
        assert_eq!(answers(&channel, 40).await, HashSet::from([1, 2]));

        // The name stops resolving to the second one: it gets no more requests.
        addresses.lock().unwrap().remove(&not_serving);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(answers(&channel, 20).await, HashSet::from([1]));
    }

    #[test]
    fn dns_targets_need_a_host_and_a_numeric_port() {
        for bad in ["dns:///flights", "dns:///flights:http", "dns:///:50051"] {
            assert!(
                matches!(lazy_channel(bad), Err(ChannelError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        assert!(is_upstream_url("dns:///flights-headless:50051"));
        assert!(!is_upstream_url("flights:50051"));
    }
}
