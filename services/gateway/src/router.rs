//! The axum router: one generic handler per annotated route ([`crate::transcode`]), the
//! gateway's own endpoints (health, readiness, metrics, OpenAPI, docs) and the middleware
//! (correlation id, access log and RED metrics, CORS), with 404/405 in the contract's shape.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use flightmesh_runtime::series::Series;
use flightmesh_runtime::trace;
use tower_http::cors::{AllowHeaders, AllowMethods, CorsLayer};
use tracing::Instrument;

use crate::error::ApiError;
use crate::routes::Route;
use crate::transcode::transcode;
use crate::{
    AppState, BoxError, CORRELATION_ID, Config, CorrelationId, REQUEST_ID, RouteContext, UserId,
    docs_ui, policy::RouteRequirement as _, ratelimit,
};

pub(crate) fn router(
    routes: &[Route],
    state: Arc<AppState>,
    config: &Config,
) -> Result<Router, BoxError> {
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
        router = router.route("/metrics", get(flightmesh_runtime::admin::metrics));
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
        .expose_headers([
            HeaderName::from_static(CORRELATION_ID),
            HeaderName::from_static(REQUEST_ID),
        ]);

    Ok(router
        .fallback(not_found)
        .layer(cors)
        // One middleware, not two: axum clones each layer's service and boxes its future per
        // request.
        .layer(middleware::from_fn_with_state(
            Arc::new(Series::new()),
            observe,
        ))
        .with_state(state))
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
    if state.draining.is_cancelled() {
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
    if state.draining.is_cancelled() {
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

/// Reads `X-Correlation-ID` (or `X-Request-ID`) or mints one; echoes it on the response (as
/// `X-Correlation-ID`, and as `X-Request-ID` too when that is the header the client sent) and puts
/// it on the span every log line of this request is written in, the access log's included.
async fn observe(
    State(handles): State<Arc<Series<RequestHandles>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let sent = [CORRELATION_ID, REQUEST_ID].into_iter().find_map(|name| {
        let value = request.headers().get(name)?.to_str().ok()?;
        let usable =
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
        usable.then(|| (name, Arc::<str>::from(value)))
    });
    let echo_request_id = matches!(sent, Some((REQUEST_ID, _)));
    let id = sent.map_or_else(
        || {
            let mut text = uuid::Uuid::encode_buffer();
            Arc::from(&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text))
        },
        |(_, id)| id,
    );
    request.extensions_mut().insert(CorrelationId(id.clone()));
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        correlation_id = %id,
    );
    trace::set_parent(&span, &trace::HeaderExtractor(request.headers()));
    let mut response = access_log(&handles, request, next).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        if echo_request_id {
            response.headers_mut().insert(REQUEST_ID, value.clone());
        }
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

/// The two series a request records into, per method, route and status.
type RequestHandles = (metrics::Counter, metrics::Histogram);

/// One log line and the RED metrics per request. The metric handles are kept by their labels
/// ([`Series`]): made once per method, route and status, not looked up per request.
async fn access_log(handles: &Series<RequestHandles>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The route's template without its trailing slash (both forms are routed), shared with the
    // router: no copy per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| {
        let path = p.as_str();
        if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        }
    });
    let response = next.run(request).await;
    let status = response.status();
    let elapsed = started.elapsed();
    let user_id = response.extensions().get::<UserId>().map(|u| u.0);
    let mut key = String::with_capacity(method.as_str().len() + route.len() + 5);
    for part in [method.as_str(), " ", status.as_str(), " ", route] {
        key.push_str(part);
    }
    let (requests, duration) = handles.get(&key, || {
        let labels = [
            ("method", method.as_str().to_owned()),
            ("route", route.to_owned()),
            ("status", status.as_str().to_owned()),
        ];
        (
            metrics::counter!("http_server_requests_total", &labels),
            metrics::histogram!("http_server_request_duration_seconds", &labels[..2]),
        )
    });
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
    if method != Method::OPTIONS && route != "/metrics" {
        tracing::info!(
            method = %method,
            route = %route,
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            user_id,
            "request"
        );
    }
    response
}
