//! What bookings needs from the catalog: a flight with its destination, fetched from the flights
//! service over gRPC with a per-attempt deadline, retried with backoff while flights is
//! UNAVAILABLE, and remembered for `FLIGHT_CACHE_TTL` (the catalog has no update API, so a short
//! cache never serves a price that changed; it saves a gRPC hop per booking on hot flights).

use std::time::Duration;

use flightmesh_proto::flights::GetFlightRequest;
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::money::decimal_field;
use flightmesh_runtime::backoff::Backoff;
use flightmesh_runtime::channel::MeshChannel;
use flightmesh_runtime::status::Fault;
use flightmesh_runtime::ttl_cache::TtlCache;
use rust_decimal::Decimal;
use tonic::Code;

use crate::error::Error;

/// Attempts per lookup while flights answers UNAVAILABLE.
const ATTEMPTS: u32 = 3;
/// What a client reads when flights cannot answer.
const UNAVAILABLE: &str = "El servicio de vuelos no esta disponible. Intente de nuevo.";
/// Most flights cached (expired ones are swept first, then any one is dropped).
const CACHE_CAPACITY: usize = 10_000;

/// The flight and destination facts a booking is priced and recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlightSnapshot {
    pub flight_id: i64,
    pub flight_number: String,
    pub capacity: i32,
    pub base_price: Decimal,
    pub destination_id: i64,
    pub destination_name: String,
    pub tax_amount: Decimal,
    pub is_promotion: bool,
    pub allows_pets: bool,
}

/// Looks flights up in the catalog.
pub struct FlightCatalog {
    client: FlightServiceClient<MeshChannel>,
    timeout: Duration,
    cache: TtlCache<i64, FlightSnapshot>,
}

impl FlightCatalog {
    pub fn new(channel: MeshChannel, timeout: Duration, ttl: Duration) -> Self {
        Self {
            client: FlightServiceClient::new(channel),
            timeout,
            cache: TtlCache::new(ttl, CACHE_CAPACITY),
        }
    }

    /// The flight `id`, or `FlightNotFound` / a peer-unavailable fault.
    pub async fn flight(&self, id: i64) -> Result<FlightSnapshot, Error> {
        if id <= 0 {
            return Err(Error::FlightNotFound);
        }
        if let Some(hit) = self.cache.get(&id) {
            return Ok(hit);
        }
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            let mut request = tonic::Request::new(GetFlightRequest { id });
            request.set_timeout(self.timeout);
            match self.client.clone().get_flight(request).await {
                Ok(response) => {
                    let snapshot = snapshot(response.into_inner())?;
                    self.cache.insert(id, snapshot.clone());
                    return Ok(snapshot);
                }
                Err(status) if status.code() == Code::NotFound => {
                    return Err(Error::FlightNotFound);
                }
                Err(status) if retryable(&status) => {
                    tracing::debug!(attempt, code = ?status.code(), "flights unavailable; retrying");
                    last = Some(status);
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
                Err(status) => return Err(Error::from(Fault::internal(status))),
            }
        }
        let cause = last.unwrap_or_else(|| tonic::Status::unavailable("flights"));
        Err(Fault::peer_unavailable("flights", UNAVAILABLE, cause).into())
    }
}

/// Reads the flight message; a malformed one is the flights service's bug, not the client's.
/// Whether a failed flight read is worth repeating: flights is away, too slow, or the connection
/// broke mid-call (that status comes from this side, with its cause as `source`: a flights
/// process killed or restarted). None of these says flights failed the request, and a read is
/// safe to repeat; after the attempts it is a 503, never a 500.
fn retryable(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
        || std::error::Error::source(status).is_some()
}

fn snapshot(flight: flightmesh_proto::flights::Flight) -> Result<FlightSnapshot, Error> {
    let malformed = |what: &str| {
        Error::from(Fault::internal(format!(
            "flights sent a flight without {what}"
        )))
    };
    let destination = flight.destination.ok_or_else(|| malformed("destination"))?;
    Ok(FlightSnapshot {
        flight_id: flight.id,
        flight_number: flight.flight_number,
        capacity: flight.capacity,
        base_price: decimal_field(flight.base_price.as_ref())
            .map_err(|_| malformed("base_price"))?,
        destination_id: destination.id,
        destination_name: destination.name,
        tax_amount: decimal_field(destination.tax_amount.as_ref())
            .map_err(|_| malformed("tax_amount"))?,
        is_promotion: destination.is_promotion,
        allows_pets: destination.allows_pets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_broken_mid_call_is_retried_an_answer_of_flights_is_not() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        // How tonic's client reports a broken connection: code Unknown, the cause as source.
        assert!(retryable(&tonic::Status::from_error(Box::new(reset))));
        assert!(retryable(&tonic::Status::unavailable("away")));
        assert!(retryable(&tonic::Status::deadline_exceeded("slow")));
        assert!(!retryable(&tonic::Status::internal("flights failed")));
        assert!(!retryable(&tonic::Status::invalid_argument("bad id")));
    }
}
