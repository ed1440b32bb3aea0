//! The bookings service's errors, and their one mapping to gRPC statuses.

use flightmesh_db::DbError;
use flightmesh_runtime::status::{self, FieldViolations};
use tonic::Status;

/// Everything that can go wrong answering a bookings request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks input rules; every violated field is listed.
    #[error("invalid request: {0:?}")]
    Invalid(FieldViolations),
    /// The Idempotency-Key header is not usable.
    #[error("invalid idempotency key")]
    InvalidIdempotencyKey,
    /// The Idempotency-Key was used before for another request.
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// No flight with that id.
    #[error("flight not found")]
    FlightNotFound,
    /// No booking with that id.
    #[error("booking not found")]
    BookingNotFound,
    /// A pet on a destination that takes none.
    #[error("destination {destination} takes no pets")]
    PetsNotAllowed {
        /// The destination's name.
        destination: String,
    },
    /// Every seat of the flight is taken.
    #[error("flight {flight_number} is sold out")]
    SoldOut {
        /// The flight's number.
        flight_number: String,
    },
    /// The flights service cannot be reached.
    #[error("the flights service is unavailable")]
    FlightsUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached.
    #[error("the database is unavailable")]
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
            Error::InvalidIdempotencyKey => Status::invalid_argument(
                "Idempotency-Key invalida: use hasta 255 caracteres ASCII visibles.",
            ),
            Error::IdempotencyKeyReused => {
                Status::invalid_argument("Idempotency-Key reutilizada con otra solicitud.")
            }
            Error::FlightNotFound => Status::not_found("El vuelo seleccionado no existe."),
            Error::BookingNotFound => Status::not_found("Reserva no encontrada."),
            Error::PetsNotAllowed { destination } => {
                Status::failed_precondition(format!("El destino {destination} no acepta mascotas."))
            }
            Error::SoldOut { flight_number } => Status::aborted(format!(
                "No hay asientos disponibles en el vuelo {flight_number}."
            )),
            Error::FlightsUnavailable(cause) => {
                tracing::warn!(error = %flightmesh_runtime::telemetry::error_chain(cause.as_ref()), "flights unavailable");
                Status::unavailable("El servicio de vuelos no esta disponible. Intente de nuevo.")
            }
            Error::Unavailable(cause) => status::unavailable(cause.as_ref()),
            Error::Internal(cause) => status::internal(cause.as_ref()),
        }
    }
}
