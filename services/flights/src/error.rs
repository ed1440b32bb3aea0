//! The catalog's errors, and their one mapping to gRPC statuses.

use flightmesh_db::DbError;
use flightmesh_runtime::status::{self, FieldViolations};
use tonic::Status;

/// Everything that can go wrong answering a catalog request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks input rules; every violated field is listed.
    #[error("invalid request: {0:?}")]
    Invalid(FieldViolations),
    /// No destination with that id (or name).
    #[error("destination not found")]
    DestinationNotFound,
    /// No flight with that id.
    #[error("flight not found")]
    FlightNotFound,
    /// A re-embedding lost the race with a newer description (embedded with it meanwhile).
    #[error("the destination's description changed")]
    DescriptionChanged,
    /// A destination with that name (in any case) exists.
    #[error("destination {name} already exists")]
    DestinationExists {
        /// The name asked for.
        name: String,
    },
    /// A flight with that number exists.
    #[error("flight {flight_number} already exists")]
    FlightExists {
        /// The number asked for.
        flight_number: String,
    },
    /// The bookings service (the seat ledger) cannot be reached.
    #[error("seat usage is unavailable")]
    SeatsUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A dependency (the database) cannot be reached.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or a broken invariant.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<FieldViolations> for Error {
    fn from(violations: FieldViolations) -> Self {
        Self::Invalid(violations)
    }
}

impl From<DbError> for Error {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(_) => Self::Unavailable(Box::new(err)),
            DbError::Query(_) | DbError::Migration { .. } => Self::Internal(Box::new(err)),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        DbError::from(err).into()
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(violations) => violations.into_status(),
            Error::DestinationNotFound => Status::not_found("Destino no encontrado."),
            Error::FlightNotFound => Status::not_found("Vuelo no encontrado."),
            Error::DescriptionChanged => Status::aborted(
                "La descripcion del destino cambio mientras se calculaba su embedding.",
            ),
            Error::DestinationExists { name } => {
                Status::already_exists(format!("El destino {name} ya existe."))
            }
            Error::FlightExists { flight_number } => {
                Status::already_exists(format!("El vuelo {flight_number} ya existe."))
            }
            Error::SeatsUnavailable(cause) => {
                tracing::warn!(error = %flightmesh_runtime::telemetry::error_chain(cause.as_ref()), "seat usage unavailable");
                Status::unavailable(
                    "No se pudo consultar la disponibilidad de asientos. Intente de nuevo.",
                )
            }
            Error::Unavailable(cause) => status::unavailable(cause.as_ref()),
            Error::Internal(cause) => status::internal(cause.as_ref()),
        }
    }
}
