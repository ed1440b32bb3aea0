//! Building gRPC statuses the way every flightmesh service answers them.
//!
//! Field validation is INVALID_ARGUMENT with a `google.rpc.BadRequest` detail listing every
//! violated field and its (Spanish) message; the gateway turns that into the contract's 422 list.

use flightmesh_proto::validate::Validate;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The message for UNAVAILABLE answers (a dependency is down; the client may retry).
pub const UNAVAILABLE_MESSAGE: &str = "Servicio temporalmente no disponible. Intente de nuevo.";
/// The message for INTERNAL answers; the cause is logged, never sent.
pub const INTERNAL_MESSAGE: &str = "Error interno del servidor.";

/// Violations collected while validating one request (all of them, not just the first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations(Vec<(String, String)>);

impl FieldViolations {
    /// No violations yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid, with the message the client will see.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }

    /// Records a violation unless `ok`.
    pub fn require(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.add(field, message);
        }
    }

    /// `(field, message)` pairs in the order found.
    #[must_use]
    pub fn violations(&self) -> &[(String, String)] {
        &self.0
    }

    /// The violations of the rules the protos write for `message` (`buf.validate` annotations,
    /// enforced by `flightmesh_proto::validate`).
    #[must_use]
    pub fn of(message: &impl Validate) -> Self {
        Self(
            message
                .validate()
                .as_slice()
                .iter()
                .map(|(field, text)| ((*field).to_owned(), text.clone()))
                .collect(),
        )
    }

    /// `message` checked against the rules its proto writes: the INVALID_ARGUMENT status
    /// ([`Self::into_status`]) listing every violation, if there is one. What a handler whose
    /// input needs no other check starts with.
    ///
    /// # Errors
    /// The status, when `message` breaks a rule.
    pub fn check(message: &impl Validate) -> Result<(), Status> {
        Self::of(message).finish().map_err(Self::into_status)
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// INVALID_ARGUMENT with a `BadRequest` detail.
    #[must_use]
    pub fn into_status(self) -> Status {
        let message = self
            .0
            .iter()
            .map(|(_, message)| message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let violations: Vec<FieldViolation> = self
            .0
            .into_iter()
            .map(|(field, message)| FieldViolation::new(field, message))
            .collect();
        Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(violations),
        )
    }
}

/// What every service's error has in common, mapped to a status in one place: input that breaks
/// the rules (INVALID_ARGUMENT with every violated field: the gateway's 422 list), a dependency
/// or a peer service that cannot be reached (UNAVAILABLE, retryable; cause logged), anything else
/// (INTERNAL with the generic message; cause logged, never sent). Services wrap it as their
/// error's `Fault` variant.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The request breaks input rules; every violated field is listed.
    #[error("invalid request: {0:?}")]
    Invalid(FieldViolations),
    /// A dependency (the database, the broker) cannot be reached.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] crate::BoxError),
    /// A peer service cannot be reached; the caller words the message (the contract does).
    #[error("the {peer} service is unavailable")]
    PeerUnavailable {
        /// The peer's name, for the log.
        peer: &'static str,
        /// What the client reads.
        message: &'static str,
        /// Why the call failed (logged, never sent).
        #[source]
        cause: crate::BoxError,
    },
    /// A bug or a broken invariant.
    #[error("internal error")]
    Internal(#[source] crate::BoxError),
}

impl Fault {
    /// An internal fault caused by `cause`.
    pub fn internal(cause: impl Into<crate::BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    /// `peer` could not answer, for `cause`; the client reads `message`.
    pub fn peer_unavailable(
        peer: &'static str,
        message: &'static str,
        cause: impl Into<crate::BoxError>,
    ) -> Self {
        Self::PeerUnavailable {
            peer,
            message,
            cause: cause.into(),
        }
    }
}

impl From<FieldViolations> for Fault {
    fn from(violations: FieldViolations) -> Self {
        Self::Invalid(violations)
    }
}

impl From<Fault> for Status {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Invalid(violations) => violations.into_status(),
            Fault::Unavailable(cause) => unavailable(cause.as_ref()),
            Fault::PeerUnavailable {
                peer,
                message,
                cause,
            } => peer_unavailable(peer, message, cause.as_ref()),
            Fault::Internal(cause) => internal(cause.as_ref()),
        }
    }
}

/// Validated `skip`/`limit` paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
}

/// `skip`/`limit` with their defaults applied. Their bounds are the protos' rules, checked by
/// the request's `validate()` before this runs (hence no violations here).
#[must_use]
pub fn page(skip: Option<i32>, limit: Option<i32>, default_limit: i32) -> Page {
    Page {
        offset: i64::from(skip.unwrap_or(0).max(0)),
        limit: i64::from(limit.unwrap_or(default_limit).max(1)),
    }
}

/// UNAVAILABLE with the generic retry message, logging the cause.
pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(error = %crate::telemetry::error_chain(cause), "dependency unavailable");
    Status::unavailable(UNAVAILABLE_MESSAGE)
}

/// UNAVAILABLE with the caller's own message for `peer` (a service it calls; the contract words
/// each one), logging which peer and the cause with its whole chain. Retryable, never a 500.
fn peer_unavailable(
    peer: &'static str,
    message: &'static str,
    cause: &(dyn std::error::Error + 'static),
) -> Status {
    tracing::warn!(peer, error = %crate::telemetry::error_chain(cause), "peer service unavailable");
    Status::unavailable(message)
}

/// INTERNAL with the generic message, logging the cause with its whole chain.
pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %crate::telemetry::error_chain(cause), "internal error");
    Status::internal(INTERNAL_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_travel_as_bad_request_details() {
        let mut violations = FieldViolations::new();
        violations.add("tax_amount", "tax_amount no puede ser negativo");
        violations.add("name", "name no puede estar vacio");
        let status = violations.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_details_bad_request().unwrap();
        let fields: Vec<_> = details
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("tax_amount", "tax_amount no puede ser negativo"),
                ("name", "name no puede estar vacio")
            ]
        );
    }

    #[test]
    fn a_peer_that_cannot_answer_is_retryable_with_the_callers_message() {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogLine(writer.clone()))
            .with_ansi(false)
            .finish();
        let cause = Status::deadline_exceeded("flights took too long");
        let status = tracing::subscriber::with_default(subscriber, || {
            Status::from(Fault::peer_unavailable(
                "flights",
                "El servicio de vuelos no responde.",
                cause,
            ))
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "El servicio de vuelos no responde.");
        // The cause is logged, with the peer, and never sent.
        assert!(!format!("{status:?}").contains("took too long"));
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("peer service unavailable")
                && log.contains("peer=\"flights\"")
                && log.contains("flights took too long"),
            "{log}"
        );
    }

    /// A log writer into a shared buffer.
    struct LogLine(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LogLine {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn paging_defaults() {
        assert_eq!(
            page(None, None, 100),
            Page {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(
            page(Some(5), Some(7), 100),
            Page {
                offset: 5,
                limit: 7
            }
        );
    }

    #[test]
    fn the_protos_rules_become_violations() {
        let request = flightmesh_proto::bookings::ListBookingsRequest {
            skip: Some(-1),
            limit: Some(0),
        };
        let violations = FieldViolations::of(&request);
        assert_eq!(
            violations.violations(),
            [
                ("skip".to_owned(), "skip no puede ser negativo".to_owned()),
                (
                    "limit".to_owned(),
                    "limit debe estar entre 1 y 1000".to_owned()
                ),
            ]
        );
    }
}
