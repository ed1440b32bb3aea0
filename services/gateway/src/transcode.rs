//! The generic handler: HTTP → gRPC → HTTP for one annotated route. Admission first (token,
//! access policy, rate limit, the bound on calls in flight), then the request read into the
//! upstream call ([`prepare`]), the call, and the answer written as the contract's JSON.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::routes::Route;
use crate::{
    AppState, CORRELATION_ID, CorrelationId, FORWARDED_HEADERS, RouteContext, UserId, auth,
    client_addr, codec, error, identity, json_in, ratelimit, streaming,
};
use flightmesh_runtime::trace;

/// The generic handler: HTTP → gRPC → HTTP for one annotated route.
pub(crate) async fn transcode(
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
        let framing = streaming::Framing::of(request.headers());
        match prepare(&state, &route.route, identity.as_ref(), params, request).await {
            Ok(prepared) => streaming::respond(&state, &route.route, framing, prepared).await,
            Err(err) => err.into_response(),
        }
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
        match prepare(&state, &route.route, identity.as_ref(), params, request).await {
            Ok(prepared) => call(&route.route, prepared).await,
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
        // The three answers above, as static labels (no string built per rejection).
        let status = match answer.status() {
            StatusCode::UNAUTHORIZED => "401",
            StatusCode::FORBIDDEN => "403",
            _ => "503",
        };
        metrics::counter!("gateway_auth_rejections_total", "status" => status).increment(1);
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
pub(crate) struct Prepared {
    request: tonic::Request<prost_reflect::DynamicMessage>,
    path: http::uri::PathAndQuery,
    channel: tonic::transport::Channel,
    /// When the call's deadline passes.
    pub(crate) deadline: Instant,
}

impl Prepared {
    /// Makes the call through `method` (a unary or a server-streaming call of a ready client,
    /// given the request, the method's path and the codec), the upstream's failure answered as
    /// `route`'s.
    ///
    /// The deadline travels as `grpc-timeout` for the service to honour, and is enforced here
    /// too: an upstream that accepts the connection and never answers still gets a 504.
    pub(crate) async fn exchange<T>(
        self,
        route: &Route,
        method: impl AsyncFnOnce(
            &mut tonic::client::Grpc<tonic::transport::Channel>,
            tonic::Request<prost_reflect::DynamicMessage>,
            http::uri::PathAndQuery,
            codec::DynamicCodec,
        ) -> Result<T, tonic::Status>,
    ) -> Result<T, ApiError> {
        let exchange = async {
            let mut client = ready_client(self.channel, route).await?;
            let codec =
                codec::DynamicCodec::new(route.method.output(), route.response_body.clone());
            method(&mut client, self.request, self.path, codec)
                .await
                .map_err(|status| ApiError::from_grpc(&status, route))
        };
        tokio::time::timeout_at(self.deadline, exchange)
            .await
            .map_err(|_| ApiError::detail(StatusCode::GATEWAY_TIMEOUT, error::TIMEOUT))?
    }
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

/// The request body, at most `MAX_BODY_BYTES` (413) and within `BODY_READ_TIMEOUT` (408).
async fn read_body(
    state: &AppState,
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, ApiError> {
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
    tokio::time::timeout(
        state.body_read_timeout,
        axum::body::to_bytes(body, state.max_body_bytes),
    )
    .await
    .map_err(|_| ApiError::detail(StatusCode::REQUEST_TIMEOUT, error::BODY_TIMEOUT))?
    .map_err(|_| too_large())
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
    let body = read_body(state, &parts, body).await?;

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

    Ok(Prepared {
        request: grpc_request,
        path: route.grpc_path.clone(),
        channel,
        deadline: Instant::now() + deadline,
    })
}

/// Makes a unary route's `prepared` call → the answer as the contract's JSON.
async fn call(route: &Route, prepared: Prepared) -> Response {
    let exchange = prepared.exchange(route, async |client, request, path, codec| {
        client.unary(request, path, codec).await
    });
    match exchange.await {
        Ok(response) => (
            [(header::CONTENT_TYPE, "application/json")],
            response.into_inner(),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
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
