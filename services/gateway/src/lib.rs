//! The REST gateway: the contract's JSON routes, transcoded to gRPC.
//!
//! At start the gateway reads the descriptor set compiled into `flightmesh-proto`, turns every
//! `google.api.http` annotation into a route ([`routes`]), and serves them with one generic
//! handler: HTTP request → request message ([`json_in`]) → unary call through a dynamic codec
//! ([`codec`]) to the owning service ([`upstream`]) → JSON ([`json_out`]). A server-streaming RPC
//! goes the same way up to the call, then answers Server-Sent Events or newline-delimited JSON
//! ([`streaming`]). Errors of every kind leave through [`error`]. The same route table produces
//! `/openapi.json` ([`openapi`]).
//!
//! Middleware, outermost first: correlation id (read or minted, echoed, in every log line) →
//! access log + RED metrics → CORS → the router (with 404/405 answers in the contract's shape).
//! Inside the generic handler, in order: the bearer token ([`auth`]) → the access policy
//! ([`policy`]) → the rate limit ([`ratelimit`]) → the call, with the caller's identity passed as
//! metadata (`x-user-id`, `x-user-role`) that clients can never set themselves. The gateway also
//! owns users ([`identity`]), served on a loopback gRPC port like any other service; that host's
//! admin port is the gateway's (`ADMIN_ADDR`: `/livez`, `/readyz`, `/metrics`).
//!
//! The rate limiter keys anonymous callers by their address as [`client_addr`] finds it behind
//! trusted proxies. Connections are served by the gateway's own loop (not `axum::serve`) so
//! that slow or silent clients are cut off (`HEADER_READ_TIMEOUT`); bodies have their own
//! deadline (`BODY_READ_TIMEOUT`).

pub mod auth;
pub mod client_addr;
pub mod codec;
pub mod config;
pub mod docs_ui;
pub mod error;
pub mod identity;
pub mod json_in;
pub mod json_out;
pub mod openapi;
pub mod policy;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod streaming;
pub mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use flightmesh_proto::identity::identity_service_server::IdentityServiceServer;
use flightmesh_runtime::metrics::Metric;
use flightmesh_runtime::{CancellationToken, Host, HostConfig, trace};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_http::cors::{AllowHeaders, AllowMethods, CorsLayer};
use tracing::Instrument;

pub use config::Config;
use error::ApiError;
use policy::RouteRequirement as _;
use routes::Route;
use upstream::Upstreams;

/// Start-up and run-time failures, with their cause chain (one type for every service).
pub use flightmesh_runtime::BoxError;

/// The correlation id header (`X-Request-ID` is accepted too).
pub use flightmesh_runtime::trace::CORRELATION_ID;
const REQUEST_ID: &str = "x-request-id";
/// Request headers passed to services as gRPC metadata (besides the correlation id).
/// `traceparent` is not among them: the gateway's own span is the services' parent.
const FORWARDED_HEADERS: &[&str] = &["idempotency-key", "tracestate"];

/// The correlation id of the request being served (a request extension).
#[derive(Debug, Clone)]
pub struct CorrelationId(pub Arc<str>);

/// What every handler shares.
struct AppState {
    upstreams: Upstreams,
    openapi: String,
    request_timeout: Duration,
    ai_request_timeout: Duration,
    max_body_bytes: usize,
    body_read_timeout: Duration,
    draining: AtomicBool,
    verifier: identity::Verifier,
    limiter: ratelimit::RateLimiter,
    trusted_proxies: client_addr::TrustedProxies,
    stream_heartbeat: Duration,
    /// Unary upstream calls in flight, bounded: beyond, a fast 503 (see `transcode`).
    in_flight: Arc<tokio::sync::Semaphore>,
    shed_wait: Duration,
}

/// A route with what it requires, resolved once at start.
struct RouteContext {
    route: Route,
    requirement: policy::Requirement,
    class: ratelimit::Class,
}

/// The signed-in user of a request, for the access log.
#[derive(Debug, Clone, Copy)]
struct UserId(i64);

/// A gateway whose port is bound and ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    drain_delay: Duration,
    header_read_timeout: Duration,
    /// The identity service on its loopback port; its admin port is the gateway's (`/livez`,
    /// `/readyz`, `/metrics` of the whole process).
    identity: Host,
}

/// The gateway's metrics.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "http_server_requests_total",
        "Requests answered, by method, route template and status",
    )
    .labelled(),
    Metric::histogram(
        "http_server_request_duration_seconds",
        "Request latency, by method and route template",
    )
    .labelled(),
    Metric::counter(
        "gateway_shed_total",
        "Requests answered 503 at once because MAX_CONCURRENT_REQUESTS upstream calls were in flight",
    ),
    Metric::counter(
        "gateway_rate_limited_total",
        "Requests refused with 429, by route class",
    )
    .labelled(),
    Metric::counter(
        "gateway_rate_limiter_errors_total",
        "Checks the shared limiter could not make (auth counted in memory, others let through)",
    ),
    Metric::counter(
        "gateway_rate_limiter_fallbacks_total",
        "Auth checks counted in this replica's memory because the shared limiter failed",
    ),
    Metric::counter(
        "gateway_auth_rejections_total",
        "Requests refused by the access policy, by status (401, 403)",
    )
    .labelled(),
    Metric::counter(
        "gateway_stream_cancelled_total",
        "Streamed answers whose client went away before the end (the upstream call was dropped)",
    ),
];

/// The PostgreSQL schema the gateway owns.
pub const SCHEMA: &str = "identity";
/// The schema's migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies pending migrations of the `identity` schema.
pub async fn migrate(db: &flightmesh_db::DbConfig) -> Result<Vec<String>, flightmesh_db::DbError> {
    flightmesh_db::migrate(&db.url, SCHEMA, MIGRATIONS).await
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
        let mut identity = Host::bind(
            "identity",
            &HostConfig {
                grpc_addr: "127.0.0.1:0".parse()?,
                admin_addr: config.admin_addr,
                drain_delay: Duration::ZERO,
                // The gateway's own limit (login and register also bound their Argon2 work).
                shed: config.shed,
                listeners: None,
            },
        )
        .await?;
        identity.add_service(IdentityServiceServer::new(identity_service));
        let mut upstream_urls = config.upstreams.clone();
        upstream_urls.insert(
            "identity".to_owned(),
            format!("http://{}", identity.grpc_addr()),
        );

        let pool = DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET)?;
        let routes = routes::routes(&pool)?;
        let limiter = match &config.rate_limit_redis {
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
        };
        let state = Arc::new(AppState {
            upstreams: Upstreams::new(&upstream_urls)?,
            openapi: openapi::document(&routes).to_string(),
            request_timeout: config.request_timeout,
            ai_request_timeout: config.ai_request_timeout,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            draining: AtomicBool::new(false),
            verifier,
            limiter,
            trusted_proxies: config.trusted_proxies.clone(),
            stream_heartbeat: config.stream_heartbeat,
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.shed.max_concurrent)),
            shed_wait: config.shed.wait,
        });
        let router = router(&routes, state.clone(), &config)?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", config.http_addr))?;
        Ok(Self {
            listener,
            router,
            state,
            drain_delay: config.drain_delay,
            header_read_timeout: config.header_read_timeout,
            identity,
        })
    }

    /// The bound admin address (`/livez`, `/readyz`, `/metrics`).
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        self.identity.admin_addr()
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled; then `/readyz` answers 503 for the drain delay
    /// before the listener closes and in-flight requests finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let addr = self.local_addr();
        let admin = self.admin_addr();
        tracing::info!(%addr, %admin, "gateway serving");
        let state = self.state.clone();
        let drain_delay = self.drain_delay;
        // The identity service is supervised: if it stops on its own, the gateway drains and
        // fails (non-zero exit) instead of serving without logins.
        let stop = shutdown.child_token();
        let identity_stop = CancellationToken::new();
        let mut tasks = flightmesh_runtime::supervise::Supervisor::new(stop.clone());
        tasks.spawn("identity service", self.identity.run(identity_stop.clone()));
        let drained = async move {
            stop.cancelled().await;
            state.draining.store(true, Ordering::SeqCst);
            tracing::info!(?drain_delay, "draining: /readyz answers 503");
            tokio::time::sleep(drain_delay).await;
        };
        serve_http(
            self.listener,
            self.router,
            self.header_read_timeout,
            drained,
        )
        .await;
        identity_stop.cancel();
        let identity = tasks.join(Duration::from_secs(20)).await;
        identity?;
        tracing::info!("gateway stopped");
        Ok(())
    }
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

/// Builds and runs the gateway until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Gateway::build(config).await?.run(shutdown).await
}

fn router(routes: &[Route], state: Arc<AppState>, config: &Config) -> Result<Router, BoxError> {
    // One MethodRouter per path (with and without the trailing slash), so that a known path with
    // an unknown method answers 405, not 404.
    let mut by_path: BTreeMap<String, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for route in routes {
        let route = Arc::new(RouteContext {
            requirement: config
                .policy
                .requirement(&route.http_method, &route.template),
            class: ratelimit::Class::of(&route.template),
            route: route.clone(),
        });
        let filter = MethodFilter::try_from(route.route.http_method.clone())
            .map_err(|err| format!("{}: {err}", route.route.template))?;
        for path in [
            route.route.template.clone(),
            format!("{}/", route.route.template),
        ] {
            let route = route.clone();
            let handler = move |State(state): State<Arc<AppState>>,
                                ConnectInfo(peer): ConnectInfo<SocketAddr>,
                                params: Result<RawPathParams, RawPathParamsRejection>,
                                request: Request| {
                transcode(state, route, peer, params, request)
            };
            let entry = by_path.remove(&path).unwrap_or_default();
            by_path.insert(path, entry.on(filter, handler));
        }
    }

    let mut router = Router::new()
        .route("/health", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(readyz))
        .route("/readyz/self", get(ready_self));
    // `/metrics` belongs on the admin port; the public copy is for the dev stack and old tooling.
    if config.public_metrics {
        router = router.route("/metrics", get(metrics));
    }
    if config.api_docs {
        router = router
            .route("/openapi.json", get(openapi_json))
            .merge(docs_ui::router());
    }
    for (path, method_router) in by_path {
        router = router.route(&path, method_router.fallback(method_not_allowed));
    }

    let origins = config
        .cors_allowed_origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("CORS_ALLOWED_ORIGINS: {err}"))?;
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_credentials(true)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static(CORRELATION_ID)]);

    Ok(router
        .fallback(not_found)
        .layer(cors)
        .layer(middleware::from_fn(access_log))
        .layer(middleware::from_fn(correlation_id))
        .with_state(state))
}

/// The generic handler: HTTP → gRPC → HTTP for one annotated route.
async fn transcode(
    state: Arc<AppState>,
    route: Arc<RouteContext>,
    peer: SocketAddr,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Response {
    let identity = match admit(&state, &route, peer, request.headers()).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let mut response = if route.route.is_streaming() {
        // Streams are long and bounded by the AI rate limit, not by this.
        streaming::respond(&state, &route.route, identity.as_ref(), params, request).await
    } else {
        // Overload is refused at the edge, in milliseconds and before any upstream work: a
        // queue here would only make every request slow (`MAX_CONCURRENT_REQUESTS`).
        let Some(_permit) = in_flight_permit(&state).await else {
            metrics::counter!("gateway_shed_total").increment(1);
            return ApiError::RetryLater {
                detail: flightmesh_runtime::status::UNAVAILABLE_MESSAGE.to_owned(),
                retry_after: flightmesh_runtime::shed::SHED_RETRY_AFTER_SECONDS,
            }
            .into_response();
        };
        match call(&state, &route.route, identity.as_ref(), params, request).await {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(err) => err.into_response(),
        }
    };
    if let Some(identity) = identity {
        response.extensions_mut().insert(UserId(identity.user_id));
    }
    response
}

/// A slot among the unary calls in flight, waiting at most `SHED_WAIT` for one.
async fn in_flight_permit(state: &AppState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    match state.in_flight.try_acquire() {
        Ok(permit) => Some(permit),
        Err(_) => tokio::time::timeout(state.shed_wait, state.in_flight.acquire())
            .await
            .ok()?
            .ok(),
    }
}

/// Token → policy → rate limit: who is calling, and whether they may. `Err` is the answer.
async fn admit(
    state: &AppState,
    route: &RouteContext,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Option<auth::Identity>, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let verified = match bearer {
        Some(token) => Some(state.verifier.verify(token).await),
        None => None,
    };
    let identity = match &verified {
        Some(Ok(identity)) => Some(identity.clone()),
        _ => None,
    };
    if !route.requirement.admits(identity.as_ref().map(|i| i.role)) {
        let answer = match (&identity, &verified) {
            (Some(_), _) => ApiError::detail(StatusCode::FORBIDDEN, "Permisos insuficientes"),
            (None, Some(Err(refusal))) => refusal.answer(),
            (None, _) => ApiError::detail(StatusCode::UNAUTHORIZED, "No autenticado"),
        };
        let answer = answer.into_response();
        metrics::counter!("gateway_auth_rejections_total", "status" => answer.status().as_str().to_owned()).increment(1);
        return Err(answer);
    }
    let client = match &identity {
        Some(identity) => format!("user:{}", identity.user_id),
        None => format!(
            "ip:{}",
            client_addr::limiter_key(state.trusted_proxies.client(peer.ip(), headers))
        ),
    };
    if let ratelimit::Verdict::Limited { retry_after } =
        state.limiter.check(route.class, &client).await
    {
        metrics::counter!("gateway_rate_limited_total", "class" => route.class.name()).increment(1);
        let mut response =
            ApiError::detail(StatusCode::TOO_MANY_REQUESTS, error::RATE_LIMITED).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return Err(response);
    }
    Ok(identity)
}

/// An upstream call ready to be made: the request message with its metadata, the method's path,
/// the channel and the deadline.
struct Prepared {
    request: tonic::Request<prost_reflect::DynamicMessage>,
    path: http::uri::PathAndQuery,
    channel: tonic::transport::Channel,
    deadline: Duration,
}

/// A gRPC client on `channel` once it can take a call (its failure answered as `route`'s).
async fn ready_client(
    channel: tonic::transport::Channel,
    route: &Route,
) -> Result<tonic::client::Grpc<tonic::transport::Channel>, ApiError> {
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|err| ApiError::from_grpc(&tonic::Status::from_error(Box::new(err)), route))?;
    Ok(client)
}

/// Reads the HTTP request into the upstream call (a 4xx answer when it does not make one).
async fn prepare(
    state: &AppState,
    route: &Route,
    identity: Option<&auth::Identity>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Result<Prepared, ApiError> {
    // Only a path that is not valid UTF-8 after percent-decoding is rejected here.
    let path: Vec<(String, String)> = params
        .map_err(|_| {
            ApiError::Validation(vec![error::FieldError::new(
                vec![error::Loc::key("path")],
                "La ruta contiene caracteres invalidos",
                "value_error",
            )])
        })?
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (parts, body) = request.into_parts();
    let too_large = || {
        ApiError::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "El cuerpo de la solicitud es demasiado grande.",
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.max_body_bytes) {
        return Err(too_large());
    }
    // A body that trickles in must not hold the connection: 408, and the connection closes.
    let body = tokio::time::timeout(
        state.body_read_timeout,
        axum::body::to_bytes(body, state.max_body_bytes),
    )
    .await
    .map_err(|_| ApiError::detail(StatusCode::REQUEST_TIMEOUT, error::BODY_TIMEOUT))?
    .map_err(|_| too_large())?;

    let message = json_in::request_message(
        route,
        &json_in::RequestParts {
            path: &path,
            query: parts.uri.query(),
            body: &body,
        },
    )
    .map_err(ApiError::Validation)?;

    let domain = route.domain();
    let channel = state.upstreams.channel(domain).ok_or_else(|| {
        ApiError::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("El servicio {domain} no esta disponible en este gateway."),
        )
    })?;

    let deadline = if domain == "ai" {
        state.ai_request_timeout
    } else {
        state.request_timeout
    };
    let mut grpc_request = tonic::Request::new(message);
    grpc_request.set_timeout(deadline);
    forward_metadata(
        &parts.headers,
        parts.extensions.get::<CorrelationId>(),
        grpc_request.metadata_mut(),
    );
    // Identity comes only from a verified token (clients' own x-user-* headers are never forwarded).
    if let Some(identity) = identity {
        let metadata = grpc_request.metadata_mut();
        metadata.insert(identity::USER_ID, identity.user_id.into());
        if let Ok(role) = identity.role.as_str().parse() {
            metadata.insert(identity::USER_ROLE, role);
        }
    }

    let path = http::uri::PathAndQuery::from_str(&format!(
        "/{}/{}",
        route.method.parent_service().full_name(),
        route.method.name()
    ))
    .map_err(|_| ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, error::INTERNAL))?;
    Ok(Prepared {
        request: grpc_request,
        path,
        channel,
        deadline,
    })
}

async fn call(
    state: &AppState,
    route: &Route,
    identity: Option<&auth::Identity>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Result<String, ApiError> {
    let Prepared {
        request: grpc_request,
        path,
        channel,
        deadline,
    } = prepare(state, route, identity, params, request).await?;
    // The deadline travels as `grpc-timeout` for the service to honour, and is enforced here too:
    // an upstream that accepts the connection and never answers still gets a 504.
    let exchange = async {
        ready_client(channel, route)
            .await?
            .unary(
                grpc_request,
                path,
                codec::DynamicCodec::new(route.method.output()),
            )
            .await
            .map_err(|status| ApiError::from_grpc(&status, route))
    };
    let response = tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| ApiError::detail(StatusCode::GATEWAY_TIMEOUT, error::TIMEOUT))??;
    Ok(json_out::encode(
        response.get_ref(),
        route.response_body.as_ref(),
    ))
}

/// Copies the correlation id and the allow-listed headers into gRPC metadata.
fn forward_metadata(
    headers: &HeaderMap,
    correlation: Option<&CorrelationId>,
    metadata: &mut tonic::metadata::MetadataMap,
) {
    if let Some(CorrelationId(id)) = correlation
        && let Ok(value) = id.parse()
    {
        metadata.insert(CORRELATION_ID, value);
    }
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(value) = value.parse()
        {
            metadata.insert(*name, value);
        }
    }
    let incoming = headers
        .get(trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    if let Some(traceparent) = trace::outgoing_traceparent(incoming)
        && let Ok(value) = traceparent.parse()
    {
        metadata.insert(trace::TRACEPARENT, value);
    }
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "message": "Sistema con Agente de IA Operativo"
    }))
}

/// The gateway's own readiness (503 only while draining): what a Kubernetes readiness probe asks.
/// `/readyz` also needs every upstream, so probing it would take every gateway replica out of
/// the Service at once when one upstream is down, and with them the routes that still work.
async fn ready_self(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining"})),
        )
            .into_response()
    } else {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining", "services": {}})),
        )
            .into_response();
    }
    let services = state.upstreams.health().await;
    let ready = services.values().all(|status| status == "SERVING");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let down: Vec<&String> = services
        .iter()
        .filter(|(_, status)| *status != "SERVING")
        .map(|(name, _)| name)
        .collect();
    let body = serde_json::json!({
        "status": if ready { "ready".to_owned() } else { format!("not ready: {} down", down.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) },
        "services": services,
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        flightmesh_runtime::metrics::render(),
    )
}

async fn openapi_json(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}

async fn not_found() -> ApiError {
    ApiError::detail(StatusCode::NOT_FOUND, "Ruta no encontrada.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::detail(StatusCode::METHOD_NOT_ALLOWED, "Metodo no permitido.")
}

/// Reads `X-Correlation-ID` (or `X-Request-ID`) or mints one; echoes it on the response and
/// puts it on the span every log line of this request is written in.
async fn correlation_id(mut request: Request, next: Next) -> Response {
    let id: Arc<str> = [CORRELATION_ID, REQUEST_ID]
        .iter()
        .find_map(|name| request.headers().get(*name))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string().into(), Into::into);
    request.extensions_mut().insert(CorrelationId(id.clone()));
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        correlation_id = %id,
    );
    trace::set_parent(&span, &trace::HeaderExtractor(request.headers()));
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

/// One log line and the RED metrics per request.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_owned(),
        |p| {
            let path = p.as_str();
            if path.len() > 1 {
                path.trim_end_matches('/').to_owned()
            } else {
                path.to_owned()
            }
        },
    );
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let user_id = response.extensions().get::<UserId>().map(|u| u.0);
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_server_requests_total", &labels).increment(1);
    metrics::histogram!("http_server_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    if method != Method::OPTIONS && route != "/metrics" {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            user_id,
            "request"
        );
    }
    response
}

flightmesh_runtime::service_binary! {
    name: "gateway",
    about: "The REST edge: the contract's JSON routes transcoded to gRPC, identity, OpenAPI and its docs",
    config: Config,
    commands: |config, shutdown| {
        /// Run the service (the default)
        Serve => serve(config, shutdown).await,
        /// Apply the migrations of the `identity` schema and exit (the chart's hook Job runs this)
        Migrate => Ok(migrate(&config.db).await.map(drop)?),
    }
}
