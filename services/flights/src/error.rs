//! The catalog's errors, and their one mapping to gRPC statuses.

use flightmesh_runtime::status::Fault;
use tonic::Status;

/// Everything that can go wrong answering a catalog request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service can meet: invalid input, a dependency or peer down, a bug.
    #[error(transparent)]
    Fault(#[from] Fault),
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
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Fault(fault) => fault.into(),
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
        }
    }
}

// `?` on database errors and field violations.
flightmesh_db::fault_conversions!(Error);
