//! Every error answer of the gateway, and the one mapping from gRPC status codes to HTTP.
//!
//! | gRPC | HTTP |
//! |---|---|
//! | INVALID_ARGUMENT | 422 (`BadRequest` field violations become the FastAPI-style list) |
//! | FAILED_PRECONDITION | 400 |
//! | NOT_FOUND | 404 |
//! | ALREADY_EXISTS, ABORTED | 409 |
//! | UNAUTHENTICATED | 401 (+ `WWW-Authenticate: Bearer`) |
//! | PERMISSION_DENIED | 403 |
//! | RESOURCE_EXHAUSTED | 429 |
//! | UNAVAILABLE, UNIMPLEMENTED | 503 (+ `Retry-After` when the status carries `retry-after`) |
//! | DEADLINE_EXCEEDED | 504 |
//! | INTERNAL, UNKNOWN, DATA_LOSS, anything else | 500 with the contract's generic message for the route |
//!
//! A 500 never carries the upstream's message: it may hold a SQL error, a stack of causes, a
//! model's output. The message is the contract's (the AI routes have their own, see
//! [`internal_message`]); the cause is logged with the request's correlation id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::StatusExt;

use crate::routes::{BodyRule, Route};

/// Generic 500 message: internal details are logged, never sent.
pub const INTERNAL: &str = "Error interno del servidor.";
/// 504 message.
pub const TIMEOUT: &str = "La solicitud excedio el tiempo de espera.";
/// 408 message: the request's body did not arrive within `BODY_READ_TIMEOUT`.
pub const BODY_TIMEOUT: &str = "La solicitud tardo demasiado en enviarse.";
/// 429 message (the contract's).
pub const RATE_LIMITED: &str = "Demasiadas solicitudes. Intente de nuevo mas tarde.";

/// One element of a field error's location: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    /// An object key or a request part (`body`, `query`, `path`).
    Key(String),
    /// An array index or a character position.
    Index(usize),
}

impl Loc {
    /// A key location.
    pub fn key(key: impl Into<String>) -> Self {
        Self::Key(key.into())
    }
}

/// One entry of a 422 answer: `{"loc": [...], "msg": "...", "type": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where: `["body", "tax_amount"]`.
    pub loc: Vec<Loc>,
    /// What is wrong (Spanish).
    pub msg: String,
    /// A machine-readable kind, as pydantic names them (`missing`, `value_error`, …).
    pub kind: &'static str,
}

impl FieldError {
    /// A field error.
    pub fn new(loc: Vec<Loc>, msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind,
        }
    }

    /// A required field that is absent.
    #[must_use]
    pub fn missing(loc: &[Loc]) -> Self {
        Self::new(loc.to_vec(), "Campo obligatorio", "missing")
    }

    fn to_json(&self) -> serde_json::Value {
        let loc: Vec<serde_json::Value> = self
            .loc
            .iter()
            .map(|part| match part {
                Loc::Key(key) => key.as_str().into(),
                Loc::Index(i) => (*i).into(),
            })
            .collect();
        serde_json::json!({ "loc": loc, "msg": self.msg, "type": self.kind })
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 422 with the list of field errors.
    Validation(Vec<FieldError>),
    /// Any status with `{"detail": "..."}`.
    Detail {
        /// HTTP status.
        status: StatusCode,
        /// Message (Spanish).
        detail: String,
    },
    /// 503 `{"detail": "..."}` with `Retry-After: retry_after` (seconds): a service at capacity.
    RetryLater {
        /// Message (Spanish).
        detail: String,
        /// Seconds.
        retry_after: u32,
    },
}

impl ApiError {
    /// `{"detail": detail}` with `status`.
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::Detail {
            status,
            detail: detail.into(),
        }
    }

    /// The HTTP status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Detail { status, .. } => *status,
            Self::RetryLater { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Maps an upstream gRPC status for `route` (see the module table).
    #[must_use]
    pub fn from_grpc(status: &tonic::Status, route: &Route) -> Self {
        // A status produced by the client side (connection refused, deadline hit before an
        // answer) carries its cause in `source`; its message is not for clients.
        let from_transport = std::error::Error::source(status).is_some();
        let message = status.message().to_owned();
        let service = route.domain();
        match status.code() {
            Code::InvalidArgument => Self::invalid_argument(status, route, message),
            Code::FailedPrecondition => Self::detail(StatusCode::BAD_REQUEST, message),
            Code::NotFound => Self::detail(StatusCode::NOT_FOUND, message),
            Code::AlreadyExists | Code::Aborted => Self::detail(StatusCode::CONFLICT, message),
            Code::Unauthenticated => Self::detail(StatusCode::UNAUTHORIZED, message),
            Code::PermissionDenied => Self::detail(StatusCode::FORBIDDEN, message),
            Code::ResourceExhausted => Self::detail(
                StatusCode::TOO_MANY_REQUESTS,
                if from_transport {
                    RATE_LIMITED.to_owned()
                } else {
                    message
                },
            ),
            Code::Unimplemented => Self::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("El servicio {service} aun no ofrece esta operacion."),
            ),
            Code::Unavailable if !from_transport && !message.is_empty() => {
                Self::service_busy(status, message)
            }
            Code::Unavailable => Self::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("El servicio {service} no esta disponible. Intente de nuevo mas tarde."),
            ),
            // A service's own deadline answer is in Spanish; tonic's ("Timeout expired") is not.
            Code::DeadlineExceeded
                if !from_transport
                    && !message.is_empty()
                    && !message.starts_with("Timeout expired") =>
            {
                Self::detail(StatusCode::GATEWAY_TIMEOUT, message)
            }
            Code::DeadlineExceeded => Self::detail(StatusCode::GATEWAY_TIMEOUT, TIMEOUT),
            // tonic's channel enforces the same deadline (`grpc-timeout`) and reports it as
            // CANCELLED "Timeout expired" when its timer fires before ours.
            Code::Cancelled if message.starts_with("Timeout expired") => {
                Self::detail(StatusCode::GATEWAY_TIMEOUT, TIMEOUT)
            }
            // The client side produced it (see `connection_broke`).
            _ if from_transport => Self::connection_broke(status, route),
            // INTERNAL, UNKNOWN, DATA_LOSS and the rest: the cause stays in the log (inside the
            // request's span, so with its correlation id), the client gets the contract's words.
            _ => {
                tracing::error!(
                    code = ?status.code(),
                    %message,
                    service,
                    route = %route.template,
                    from_transport,
                    "upstream failed"
                );
                Self::detail(StatusCode::INTERNAL_SERVER_ERROR, internal_message(route))
            }
        }
    }

    /// INVALID_ARGUMENT: the contract's 422 list from the status's field violations, or one
    /// 422 message when it has none.
    fn invalid_argument(status: &tonic::Status, route: &Route, message: String) -> Self {
        let violations = status
            .get_details_bad_request()
            .map(|details| details.field_violations)
            .unwrap_or_default();
        if violations.is_empty() {
            return Self::detail(StatusCode::UNPROCESSABLE_ENTITY, message);
        }
        Self::Validation(
            violations
                .into_iter()
                .map(|v| {
                    FieldError::new(
                        field_location(route, &v.field),
                        v.description,
                        "value_error",
                    )
                })
                .collect(),
        )
    }

    /// A service's own UNAVAILABLE: at capacity, it says when to come back (the identity
    /// service's hashing), which becomes `Retry-After`.
    fn service_busy(status: &tonic::Status, message: String) -> Self {
        match status
            .metadata()
            .get(crate::identity::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
        {
            Some(retry_after) => Self::RetryLater {
                detail: message,
                retry_after,
            },
            None => Self::detail(StatusCode::SERVICE_UNAVAILABLE, message),
        }
    }

    /// A status the client side produced: the connection broke mid-call (the service's process
    /// died or was restarted, a reset on the way). Nothing says the service failed the request:
    /// retryable, as a service that is away (a booking retried with its Idempotency-Key is
    /// answered once).
    fn connection_broke(status: &tonic::Status, route: &Route) -> Self {
        let service = route.domain();
        tracing::warn!(
            code = ?status.code(),
            error = %flightmesh_runtime::telemetry::error_chain(status),
            service,
            route = %route.template,
            "upstream connection broke mid-call; answering 503"
        );
        Self::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("El servicio {service} no esta disponible. Intente de nuevo mas tarde."),
        )
    }
}

/// The contract's 500 message of a route: the AI routes each have theirs, every other route
/// the generic one.
#[must_use]
pub fn internal_message(route: &Route) -> &'static str {
    match route.template.as_str() {
        "/api/v1/ai/chat" | "/api/v1/ai/chat/stream" => "Error procesando solicitud de IA",
        "/api/v1/ai/suggest-price" => "Error procesando sugerencia de precio",
        "/api/v1/ai/predict-demand" => "Error procesando prediccion de demanda",
        _ => INTERNAL,
    }
}

/// Where a field named by a service (`tax_amount`, `passenger.age`) came from in the request.
fn field_location(route: &Route, field: &str) -> Vec<Loc> {
    let top = field.split('.').next().unwrap_or(field);
    let part = if route.path_fields.iter().any(|f| f.name() == top) {
        "path"
    } else if matches!(route.body, BodyRule::None) {
        "query"
    } else {
        "body"
    };
    std::iter::once(Loc::key(part))
        .chain(field.split('.').filter(|s| !s.is_empty()).map(Loc::key))
        .collect()
}

impl ApiError {
    /// The answer's body: `{"detail": "..."}`, or `{"detail": [field errors]}` for a 422 (also
    /// the data of a streamed route's error event).
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        match self {
            Self::Validation(errors) => serde_json::json!({
                "detail": errors.iter().map(FieldError::to_json).collect::<Vec<_>>()
            }),
            Self::Detail { detail, .. } | Self::RetryLater { detail, .. } => {
                serde_json::json!({ "detail": detail })
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body();
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RetryLater { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // The rest of a late body may still be on its way: close instead of reading it.
        if status == StatusCode::REQUEST_TIMEOUT {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    fn route(template: &str) -> Route {
        let pool = DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        crate::routes::routes(&pool)
            .unwrap()
            .into_iter()
            .find(|r| r.template == template)
            .unwrap_or_else(|| panic!("no route {template}"))
    }

    #[test]
    fn internal_unknown_and_data_loss_answer_the_contracts_message_only() {
        let leaky = "duplicate key value violates unique constraint \"bookings_pkey\" (db.rs:42)";
        let cases = [
            ("/api/v1/bookings/{id}", INTERNAL),
            ("/api/v1/flights", INTERNAL),
            ("/api/v1/ai/chat", "Error procesando solicitud de IA"),
            ("/api/v1/ai/chat/stream", "Error procesando solicitud de IA"),
            (
                "/api/v1/ai/suggest-price",
                "Error procesando sugerencia de precio",
            ),
            (
                "/api/v1/ai/predict-demand",
                "Error procesando prediccion de demanda",
            ),
        ];
        for (template, expected) in cases {
            let route = route(template);
            for code in [Code::Internal, Code::Unknown, Code::DataLoss] {
                for message in [leaky, "", "Error interno del servidor."] {
                    assert_eq!(
                        ApiError::from_grpc(&tonic::Status::new(code, message), &route),
                        ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, expected),
                        "{code:?} {message:?} on {template}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_connection_broken_mid_call_is_a_retryable_503_never_a_500() {
        let route = route("/api/v1/bookings");
        // What tonic's client makes of a connection reset: a status whose source is the error.
        let reset = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
        assert!(std::error::Error::source(&reset).is_some());
        assert_eq!(
            ApiError::from_grpc(&reset, &route),
            ApiError::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "El servicio bookings no esta disponible. Intente de nuevo mas tarde."
            )
        );
        // The same code answered by the service itself is its failure: 500.
        let answered = tonic::Status::new(reset.code(), "h2 protocol error");
        assert_eq!(
            ApiError::from_grpc(&answered, &route).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn client_mistakes_keep_the_services_own_message() {
        let route = route("/api/v1/flights/{id}");
        assert_eq!(
            ApiError::from_grpc(&tonic::Status::not_found("Vuelo no encontrado."), &route),
            ApiError::detail(StatusCode::NOT_FOUND, "Vuelo no encontrado.")
        );
        assert_eq!(
            ApiError::from_grpc(
                &tonic::Status::failed_precondition("No hay asientos disponibles."),
                &route
            ),
            ApiError::detail(StatusCode::BAD_REQUEST, "No hay asientos disponibles.")
        );
    }

    #[test]
    fn a_request_timeout_closes_the_connection() {
        let response = ApiError::detail(StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT).into_response();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
}
