//! The REST gateway: the contract's JSON routes, transcoded to gRPC.
//!
//! At start the gateway reads the descriptor set compiled into `flightmesh-proto`, turns every
//! `google.api.http` annotation into a route ([`routes`]), and serves them with one generic
//! handler: HTTP request → request message ([`json_in`]) → unary call through a dynamic codec
//! ([`codec`]) to the owning service ([`upstream`]) → JSON ([`json_out`]). Errors of every kind
//! leave through [`error`]. The same route table produces `/openapi.json` ([`openapi`]).
//!
//! Middleware, outermost first: correlation id (read or minted, echoed, in every log line) →
//! access log + RED metrics → CORS → the router (with 404/405 answers in the contract's shape).

pub mod codec;
pub mod config;
pub mod error;
pub mod json_in;
pub mod json_out;
pub mod openapi;
pub mod routes;
pub mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use axum::serve::ListenerExt as _;
use flightmesh_runtime::CancellationToken;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tower_http::cors::{AllowHeaders, AllowMethods, CorsLayer};
use tracing::Instrument;

pub use config::Config;
use error::ApiError;
use routes::Route;
use upstream::Upstreams;

/// Start-up and run-time failures, with their cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The correlation id header (`X-Request-ID` is accepted too).
pub const CORRELATION_ID: &str = "x-correlation-id";
const REQUEST_ID: &str = "x-request-id";
/// Request headers passed to services as gRPC metadata (besides the correlation id).
const FORWARDED_HEADERS: &[&str] = &["idempotency-key", "traceparent", "tracestate"];

/// The interactive API docs page (no CDN: it works offline).
const DOCS_HTML: &str = include_str!("../assets/docs.html");

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
    draining: AtomicBool,
}

/// A gateway whose port is bound and ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    drain_delay: Duration,
}

impl Gateway {
    /// Reads the route table from the descriptors, connects (lazily) to the services and binds.
    pub async fn build(config: Config) -> Result<Self, BoxError> {
        flightmesh_runtime::metrics::handle();
        let pool = DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET)?;
        let routes = routes::routes(&pool)?;
        let state = Arc::new(AppState {
            upstreams: Upstreams::new(&config.upstreams)?,
            openapi: openapi::document(&routes).to_string(),
            request_timeout: config.request_timeout,
            ai_request_timeout: config.ai_request_timeout,
            max_body_bytes: config.max_body_bytes,
            draining: AtomicBool::new(false),
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
        })
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
        tracing::info!(%addr, "gateway serving");
        let state = self.state.clone();
        let drain_delay = self.drain_delay;
        // TCP_NODELAY: small JSON answers must not wait on Nagle + delayed ACK.
        axum::serve(
            self.listener.tap_io(|tcp| drop(tcp.set_nodelay(true))),
            self.router,
        )
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            state.draining.store(true, Ordering::SeqCst);
            tracing::info!(?drain_delay, "draining: /readyz answers 503");
            tokio::time::sleep(drain_delay).await;
        })
        .await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
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
        let route = Arc::new(route.clone());
        let filter = MethodFilter::try_from(route.http_method.clone())
            .map_err(|err| format!("{}: {err}", route.template))?;
        for path in [route.template.clone(), format!("{}/", route.template)] {
            let route = route.clone();
            let handler = move |State(state): State<Arc<AppState>>,
                                params: Result<RawPathParams, RawPathParamsRejection>,
                                request: Request| {
                transcode(state, route, params, request)
            };
            let entry = by_path.remove(&path).unwrap_or_default();
            by_path.insert(path, entry.on(filter, handler));
        }
    }

    let mut router = Router::new()
        .route("/health", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(|| async { Html(DOCS_HTML) }))
        .route("/docs/", get(|| async { Html(DOCS_HTML) }));
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
    route: Arc<Route>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Response {
    match call(&state, &route, params, request).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn call(
    state: &AppState,
    route: &Route,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Result<String, ApiError> {
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
    let body = axum::body::to_bytes(body, state.max_body_bytes)
        .await
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

    let mut grpc_request = tonic::Request::new(message);
    grpc_request.set_timeout(if domain == "ai" {
        state.ai_request_timeout
    } else {
        state.request_timeout
    });
    forward_metadata(
        &parts.headers,
        parts.extensions.get::<CorrelationId>(),
        grpc_request.metadata_mut(),
    );

    let path = http::uri::PathAndQuery::from_str(&format!(
        "/{}/{}",
        route.method.parent_service().full_name(),
        route.method.name()
    ))
    .map_err(|_| ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, error::INTERNAL))?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|err| ApiError::from_grpc(&tonic::Status::from_error(Box::new(err)), route))?;
    let response = client
        .unary(
            grpc_request,
            path,
            codec::DynamicCodec::new(route.method.output()),
        )
        .await
        .map_err(|status| ApiError::from_grpc(&status, route))?;
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
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "message": "Sistema con Agente de IA Operativo"
    }))
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
    let span = tracing::info_span!("request", correlation_id = %id);
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
            "request"
        );
    }
    response
}
