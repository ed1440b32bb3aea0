//! The gateway process: [`Gateway::build`] wires identity, routes, upstreams and limits onto a
//! [`Host`] (the identity gRPC service, the admin port, the drain) whose supervised task serves
//! the REST port; [`Gateway::run`] runs the host until shutdown, then drains like every service.
//! HTTP connections are served by our own loop ([`serve_http`]) rather than `axum::serve`, so
//! that slow or silent clients are cut off.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use flightmesh_proto::identity::identity_service_server::IdentityServiceServer;
use flightmesh_runtime::{CancellationToken, Host, HostConfig};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::router::router;
use crate::upstream::Upstreams;
use crate::{
    AppState, BoxError, Config, METRICS, auth, identity, migrate, openapi, ratelimit, routes,
};

/// A gateway whose ports are bound and ready to [`run`](Gateway::run).
pub struct Gateway {
    /// The identity service on its loopback port, the admin port (`/livez`, `/readyz`,
    /// `/metrics` of the whole process), the drain, and the REST server as a supervised task.
    host: Host,
    /// The bound REST address.
    http_addr: SocketAddr,
}

impl Gateway {
    /// Migrates the identity schema, starts the identity service, reads the route table from the
    /// descriptors, connects (lazily) to the services and binds.
    pub async fn build(config: Config) -> Result<Self, BoxError> {
        flightmesh_runtime::metrics::declare(METRICS);
        flightmesh_runtime::metrics::declare(identity::METRICS);
        if config.migrate_on_start {
            migrate(&config.db).await?;
        }
        let (identity_service, verifier) = identity_service(&config).await?;
        let mut host = Host::bind(
            "gateway",
            &HostConfig {
                grpc_addr: "127.0.0.1:0".parse()?,
                admin_addr: config.admin_addr,
                drain_delay: config.drain_delay,
                // The gateway's own limit (login and register also bound their Argon2 work).
                shed: config.shed,
                listeners: None,
            },
        )
        .await?;
        host.add_service(IdentityServiceServer::new(identity_service));
        let mut upstream_urls = config.upstreams.clone();
        upstream_urls.insert(
            "identity".to_owned(),
            format!("http://{}", host.grpc_addr()),
        );

        let pool = DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET)?;
        let routes = routes::routes(&pool)?;
        let limiter = rate_limiter(&config)?;
        let state = Arc::new(AppState {
            upstreams: Upstreams::new(&upstream_urls)?,
            openapi: openapi::document(&routes).to_string(),
            request_timeout: config.request_timeout,
            ai_request_timeout: config.ai_request_timeout,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            draining: host.draining(),
            verifier,
            limiter,
            trusted_proxies: config.trusted_proxies.clone(),
            stream_heartbeat: config.stream_heartbeat,
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.shed.max_concurrent)),
            shed_wait: config.shed.wait,
        });
        let router = router(&routes, state, &config)?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", config.http_addr))?;
        let http_addr = listener.local_addr()?;
        // The REST port closes with the gRPC port, once the drain delay has passed (`/readyz`
        // answers 503 meanwhile); if it stopped on its own the host would drain and fail.
        let (drained, header_read_timeout) = (host.drained(), config.header_read_timeout);
        host.spawn("http server", move |_stop| {
            serve_http(
                listener,
                router,
                header_read_timeout,
                drained.cancelled_owned(),
            )
        });
        Ok(Self { host, http_addr })
    }

    /// The bound admin address (`/livez`, `/readyz`, `/metrics`).
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until `shutdown` is cancelled; then `/readyz` answers 503 for the drain delay
    /// before the listeners close and in-flight requests finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        tracing::info!(addr = %self.http_addr, admin = %self.host.admin_addr(), "gateway serving");
        self.host.run(shutdown).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The identity service (with the bootstrap admin in place) and the token verifier, on the
/// `identity` schema.
async fn identity_service(
    config: &Config,
) -> Result<(identity::Identity, identity::Verifier), BoxError> {
    let db = flightmesh_db::pool(&config.db);
    let identity_config = &config.identity;
    for warning in identity_config.start_warnings() {
        tracing::warn!("{warning}");
    }
    let tokens = Arc::new(auth::Tokens::new(&identity_config.tokens)?);
    let verifier = identity::Verifier::new(
        tokens.clone(),
        db.clone(),
        identity_config.user_check_interval,
        identity_config.user_check_cache_size,
    );
    let identity_service = identity::Identity::new(
        db,
        tokens,
        auth::Passwords::new(identity_config.password_hash_concurrency),
        identity_config.password_min_length,
    );
    if let Some((email, password)) = &config.admin {
        identity_service
            .ensure_admin(email, password.expose())
            .await?;
        tracing::info!(email = %email, "bootstrap admin ready");
    }
    Ok((identity_service, verifier))
}

/// The rate limiter: shared through Redis, or per replica.
fn rate_limiter(config: &Config) -> Result<ratelimit::RateLimiter, BoxError> {
    Ok(match &config.rate_limit_redis {
        Some(url) => ratelimit::RateLimiter::redis(
            config.rate_limits.clone(),
            url.expose(),
            &config.redis_key_prefix,
            config.rate_limit_memory_clients,
        )?,
        None => ratelimit::RateLimiter::in_memory(
            config.rate_limits.clone(),
            config.rate_limit_memory_clients,
        ),
    })
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` until `shutdown` completes, then
/// lets open connections finish their requests. Unlike `axum::serve`, a connection gets
/// `header_read_timeout` to send each request's headers (idle keep-alive time included): a
/// client that trickles a header, or opens connections and sends nothing, cannot hold them.
async fn serve_http(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // HTTP/2: a peer that stops answering pings is dropped.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let stopping = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // TCP_NODELAY: small JSON answers must not wait on Nagle + delayed ACK.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let builder = builder.clone();
        let stopping = stopping.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A connection that never speaks (a client's spare pooled connection) must not
            // hold up the shutdown for the whole header read timeout.
            let known = tokio::select! {
                known = protocol_known(&tcp, header_read_timeout) => known,
                () = stopping.cancelled() => false,
            };
            if !known {
                tracing::debug!(%peer, "connection closed: nothing usable within the header read timeout");
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(tcp),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    graceful.shutdown().await;
}

/// The HTTP/2 connection preface: hyper-util reads this much to tell HTTP/2 from HTTP/1.1.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits (at most `deadline`) until the client has sent enough to tell its protocol. hyper's
/// header read timeout only starts once it has, so without this a connection that sends nothing
/// (or a few bytes of the preface) would be held forever. `false`: too late, or closed.
async fn protocol_known(tcp: &tokio::net::TcpStream, deadline: Duration) -> bool {
    let mut first = [0_u8; H2_PREFACE.len()];
    tokio::time::timeout(deadline, async {
        loop {
            let n = match tcp.peek(&mut first).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if n == H2_PREFACE.len() || first[..n] != H2_PREFACE[..n] {
                return true;
            }
            // Part of the preface: the rest is on its way (peek would answer at once again).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or(false)
}
