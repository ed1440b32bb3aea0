//! The bookings service's errors, and their one mapping to gRPC statuses.

use flightmesh_runtime::status::Fault;
use tonic::Status;

/// Everything that can go wrong answering a bookings request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service can meet: invalid input, a dependency or peer down, a bug.
    #[error(transparent)]
    Fault(#[from] Fault),
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
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Fault(fault) => fault.into(),
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
        }
    }
}

// `?` on database errors and field violations.
flightmesh_db::fault_conversions!(Error);
