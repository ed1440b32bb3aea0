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
//!
//! Where each part lives: the process (build, run, drain, the connection loop) in `server`, the
//! axum router with the gateway's own endpoints and middleware in `router`, the generic handler
//! (admission, the request read into the call, the call) in `transcode`.

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
mod openapi_rules;
pub mod policy;
pub mod ratelimit;
mod router;
pub mod routes;
pub mod secrets;
mod server;
pub mod streaming;
mod transcode;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::metrics::Metric;

pub use config::Config;
use routes::Route;
pub use server::Gateway;
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
    /// The host's drain has begun: `/readyz` and `/readyz/self` answer 503.
    draining: CancellationToken,
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
    flightmesh_db::migrate(&db.url, SCHEMA, &[MIGRATIONS]).await
}

/// Builds and runs the gateway until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Gateway::build(config).await?.run(shutdown).await
}

flightmesh_runtime::service_binary! {
    name: "gateway", config: Config,
    about: "The REST edge: the contract's JSON routes transcoded to gRPC, identity, OpenAPI and its docs",
    commands: |config| {
        /// Apply the migrations of the `identity` schema and exit (the chart's hook Job runs this)
        Migrate => Ok(migrate(&config.db).await.map(drop)?),
    }
}
