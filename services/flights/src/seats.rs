//! Seats taken per flight, asked of the bookings service (which keeps the ledger; ADR 0003).

use std::collections::HashMap;
use std::time::Duration;

use flightmesh_proto::bookings::GetSeatUsageRequest;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_runtime::channel::MeshChannel;
use flightmesh_runtime::status::Fault;

use crate::error::Error;

/// What a client reads when the ledger cannot be asked.
const UNAVAILABLE: &str = "No se pudo consultar la disponibilidad de asientos. Intente de nuevo.";

/// A client of `BookingService.GetSeatUsage`.
#[derive(Clone)]
pub struct SeatLedger {
    client: BookingServiceClient<MeshChannel>,
    timeout: Duration,
}

impl SeatLedger {
    pub fn new(channel: MeshChannel, timeout: Duration) -> Self {
        Self {
            client: BookingServiceClient::new(channel),
            timeout,
        }
    }

    /// Seats taken on each of `flight_ids` (absent = none taken).
    pub async fn taken(&self, flight_ids: Vec<i64>) -> Result<HashMap<i64, i32>, Error> {
        if flight_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut request = tonic::Request::new(GetSeatUsageRequest { flight_ids });
        request.set_timeout(self.timeout);
        let response = self
            .client
            .clone()
            .get_seat_usage(request)
            .await
            .map_err(|status| Fault::peer_unavailable("bookings", UNAVAILABLE, status))?;
        Ok(response.into_inner().seats_taken)
    }
}
