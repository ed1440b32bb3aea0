//! Load shedding: at most `MAX_CONCURRENT_REQUESTS` calls in flight per process; a call that
//! cannot start within `SHED_WAIT` is answered at once with UNAVAILABLE and a `retry-after` (the
//! gateway turns both into `503` with `Retry-After`).
//!
//! Without it, overload queues in front of the database pool: every extra call waits the whole
//! `DATABASE_CONNECT_TIMEOUT` for a connection and then fails anyway, and the latency of every
//! call grows with the queue. A bounded number in flight keeps the served calls fast and makes
//! the others fail in milliseconds, which a client (or the gateway's caller) can retry elsewhere.
//! Health checks and reflection are never shed: a busy service is not a dead one.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Reader, Var};
use crate::metrics::Metric;

/// `MAX_CONCURRENT_REQUESTS`.
pub const MAX_CONCURRENT_REQUESTS: Var = Var::new("MAX_CONCURRENT_REQUESTS", "64").doc(
    "Most calls in flight in this process (gRPC calls in a service, unary REST requests in the gateway); beyond it a call waits `SHED_WAIT`, then is refused: UNAVAILABLE, HTTP 503 with `Retry-After`",
);
/// `SHED_WAIT`.
pub const SHED_WAIT: Var = Var::new("SHED_WAIT", "25ms")
    .doc("How long a call waits for a free slot under `MAX_CONCURRENT_REQUESTS` before it is shed");

/// The `retry-after` (seconds) a shed call carries: overload passes in about that time, or the
/// client is better served by another replica.
pub const SHED_RETRY_AFTER_SECONDS: u32 = 1;

/// Metrics of the shedding layer.
pub const METRICS: &[Metric] = &[Metric::counter(
    "grpc_server_shed_total",
    "Calls answered UNAVAILABLE at once because MAX_CONCURRENT_REQUESTS were in flight, by service",
)
.labelled()];

/// How much a process admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShedConfig {
    /// See [`MAX_CONCURRENT_REQUESTS`].
    pub max_concurrent: usize,
    /// See [`SHED_WAIT`].
    pub wait: Duration,
}

impl ShedConfig {
    /// Reads `MAX_CONCURRENT_REQUESTS` and `SHED_WAIT`.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let max_concurrent: usize = r.get(MAX_CONCURRENT_REQUESTS);
        r.ensure(
            &MAX_CONCURRENT_REQUESTS,
            max_concurrent > 0,
            "must be at least 1",
        );
        Self {
            max_concurrent,
            wait: r.duration(SHED_WAIT),
        }
    }
}

crate::env_config!(ShedConfig);

impl Default for ShedConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            wait: Duration::from_millis(25),
        }
    }
}

/// Tower layer: see the module docs.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl ShedLayer {
    /// A layer admitting `config.max_concurrent` calls at once.
    #[must_use]
    pub fn new(config: ShedConfig) -> Self {
        crate::metrics::declare(METRICS);
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            wait: config.wait,
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
            wait: self.wait,
        }
    }
}

/// See [`ShedLayer`].
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
    wait: Duration,
}

/// Calls that are never shed: they tell whether the process is alive and what it serves.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

/// Most request frames read before a shed answer (a unary call's request is one or two).
const DRAIN_LIMIT: usize = 16;

/// Reads the rest of a shed call's request (at most [`DRAIN_LIMIT`] frames, for at most `wait`).
/// Answering before the request's end makes the HTTP/2 server reset the stream, and h2 counts
/// those resets: past its limit (1,024) it sends GOAWAY `too_many_internal_resets` and every call
/// on the connection — the gateway's whole channel — fails at once (an overload run answered
/// thousands of 500s that way before this).
async fn drain<B>(mut body: B, wait: Duration)
where
    B: tonic::codegen::Body + Unpin,
{
    let read = async {
        for _ in 0..DRAIN_LIMIT {
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
}

impl<S, B, RB> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Send,
    RB: Default + Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if exempt(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        // The clone is the one that was polled ready: call it, keep a fresh one for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permits = self.permits.clone();
        let wait = self.wait;
        Box::pin(async move {
            let permit: OwnedSemaphorePermit = match permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => match tokio::time::timeout(wait, permits.acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    // Timed out (or the semaphore closed, which never happens): shed.
                    _ => {
                        let answer = shed(request.uri().path());
                        drain(request.into_body(), wait).await;
                        return Ok(answer);
                    }
                },
            };
            let response = inner.call(request).await;
            drop(permit);
            response
        })
    }
}

/// A trailers-only UNAVAILABLE answer with the generic Spanish message and `retry-after`.
fn shed<RB: Default>(path: &str) -> http::Response<RB> {
    let service = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    metrics::counter!("grpc_server_shed_total", "grpc_service" => service).increment(1);
    let mut response = http::Response::new(RB::default());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        "grpc-status",
        http::HeaderValue::from(tonic::Code::Unavailable as i32),
    );
    headers.insert(
        "grpc-message",
        http::HeaderValue::from_str(&percent_encode(crate::status::UNAVAILABLE_MESSAGE))
            .unwrap_or_else(|_| http::HeaderValue::from_static("unavailable")),
    );
    headers.insert(
        "retry-after",
        http::HeaderValue::from(SHED_RETRY_AFTER_SECONDS),
    );
    response
}

/// `grpc-message` is percent-encoded UTF-8 (gRPC over HTTP/2, "Status-Message").
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::util::BoxCloneService;
    use tower::{Layer, ServiceExt};

    use super::*;

    /// A process's gRPC server, as the tests call it.
    type Server = BoxCloneService<http::Request<String>, http::Response<String>, Infallible>;

    /// A process admitting one call at a time, in which a call waits at most `wait` for the slot
    /// and takes `busy` once served (a slow query, say).
    fn one_slot(wait: Duration, busy: Duration) -> Server {
        let config = ShedConfig {
            max_concurrent: 1,
            wait,
        };
        let slow = tower::service_fn(move |_: http::Request<String>| async move {
            tokio::time::sleep(busy).await;
            Ok::<_, Infallible>(http::Response::new("served".to_owned()))
        });
        BoxCloneService::new(ShedLayer::new(config).layer(slow))
    }

    fn request(path: &str) -> http::Request<String> {
        http::Request::builder()
            .uri(path)
            .body("a request".to_owned())
            .unwrap()
    }

    /// Starts a call to `path` in the background and lets it take the slot.
    async fn take_the_slot(
        service: &Server,
        path: &str,
    ) -> tokio::task::JoinHandle<Result<http::Response<String>, Infallible>> {
        let first = tokio::spawn(service.clone().oneshot(request(path)));
        tokio::task::yield_now().await;
        first
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_limit_a_call_waits_briefly_then_is_shed_with_retry_after() {
        let service = one_slot(Duration::from_millis(25), Duration::from_secs(1));
        let path = "/flightmesh.flights.v1.FlightService/ListFlights";
        let first = take_the_slot(&service, path).await;

        let started = tokio::time::Instant::now();
        let shed = service.clone().oneshot(request(path)).await.unwrap();
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(25),
            "it waited SHED_WAIT, no more"
        );
        assert_eq!(shed.headers()["grpc-status"], "14");
        assert_eq!(shed.headers()["retry-after"], "1");
        assert_eq!(
            shed.headers()["grpc-message"],
            "Servicio temporalmente no disponible. Intente de nuevo."
        );
        assert!(shed.body().is_empty());

        // Health is answered however busy the process is.
        let health = service
            .clone()
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(health.body(), "served");

        // The first call was served, and its slot is free again.
        assert_eq!(first.await.unwrap().unwrap().body(), "served");
        let again = service.oneshot(request(path)).await.unwrap();
        assert_eq!(again.body(), "served");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_gets_a_slot_within_the_wait_is_served() {
        let service = one_slot(Duration::from_millis(500), Duration::from_millis(100));
        let path = "/flightmesh.bookings.v1.BookingService/GetBooking";
        let first = take_the_slot(&service, path).await;
        let second = service.oneshot(request(path)).await.unwrap();
        assert_eq!(second.body(), "served");
        assert_eq!(first.await.unwrap().unwrap().body(), "served");
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("Servicio á 100%"), "Servicio %C3%A1 100%25");
    }

    #[test]
    fn health_and_reflection_are_never_shed() {
        assert!(exempt("/grpc.health.v1.Health/Check"));
        assert!(exempt(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!exempt("/flightmesh.flights.v1.FlightService/ListFlights"));
    }
}
