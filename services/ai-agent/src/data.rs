//! The facts the agent answers from, fetched from the owning services over gRPC — the agent holds
//! no database credentials. Every function returns plain data that serializes to the JSON a tool
//! hands the model, and a Spanish "no information" answer instead of an error when a destination
//! does not exist.

use std::time::Duration;

use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    GetDestinationMarketRequest, ListDestinationsRequest, SearchFlightsRequest,
};
use flightmesh_proto::stats::stats_service_client::StatsServiceClient;
use flightmesh_proto::stats::{GetDestinationStatsRequest, GetGeneralStatsRequest};
use flightmesh_runtime::channel::MeshChannel;
use serde::Serialize;
use tonic::{Code, Status};

use crate::demand::{Prediction, predict};

/// Deadline of one data lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// What the market looks like for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Market {
    pub destination: String,
    pub tax_amount: String,
    pub is_promotion: bool,
    pub allows_pets: bool,
    /// Mean base price of its flights; `None` when it has none.
    pub average_base_price: Option<String>,
    pub flight_count: i32,
    pub seats_available: i64,
}

/// Demand across the airline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Demand {
    /// (destination, bookings), most booked first.
    pub bookings_by_destination: Vec<(String, i64)>,
    pub total_revenue: String,
    pub total_infants: i64,
    pub most_popular: Option<String>,
}

/// A flight in a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlightSummary {
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub base_price: String,
    pub seats_available: i32,
}

/// Why data could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A service did not answer (or answered an error other than "not found").
    #[error("{service} unavailable: {status}")]
    Unavailable {
        /// Which one.
        service: &'static str,
        /// Its answer.
        status: Status,
    },
}

impl DataError {
    /// The flights service answered `status` instead of the data.
    fn flights(status: Status) -> Self {
        Self::Unavailable {
            service: "flights",
            status,
        }
    }

    /// The stats service answered `status` instead of the data.
    fn stats(status: Status) -> Self {
        Self::Unavailable {
            service: "stats",
            status,
        }
    }
}

/// The sentence the contract uses when a destination is unknown.
#[must_use]
pub fn not_found_text(name: &str) -> String {
    format!("No se encontró información para el destino {name}.")
}

/// gRPC clients of the services that own the data.
#[derive(Clone)]
pub struct Sources {
    flights: FlightServiceClient<MeshChannel>,
    stats: StatsServiceClient<MeshChannel>,
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(LOOKUP_TIMEOUT);
    request
}

impl Sources {
    pub fn new(flights: MeshChannel, stats: MeshChannel) -> Self {
        Self {
            flights: FlightServiceClient::new(flights),
            stats: StatsServiceClient::new(stats),
        }
    }

    /// Market data of a destination (exact name, any case); `Ok(None)` if it does not exist.
    pub async fn market(&self, destination: &str) -> Result<Option<Market>, DataError> {
        let answer = self
            .flights
            .clone()
            .get_destination_market(request(GetDestinationMarketRequest {
                destination_name: destination.trim().to_owned(),
            }))
            .await;
        let market = match answer {
            Ok(market) => market.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(status) => {
                return Err(DataError::flights(status));
            }
        };
        let destination = market.destination.unwrap_or_default();
        Ok(Some(Market {
            destination: destination.name,
            tax_amount: destination.tax_amount.map(|d| d.value).unwrap_or_default(),
            is_promotion: destination.is_promotion,
            allows_pets: destination.allows_pets,
            average_base_price: market.average_base_price.map(|d| d.value),
            flight_count: market.flight_count,
            seats_available: market.seats_available,
        }))
    }

    /// Names of every destination (for recognising one in a question).
    pub async fn destination_names(&self) -> Result<Vec<String>, DataError> {
        let destinations = self
            .flights
            .clone()
            .list_destinations(request(ListDestinationsRequest {
                skip: None,
                limit: Some(1000),
            }))
            .await
            .map_err(DataError::flights)?
            .into_inner()
            .destinations;
        Ok(destinations.into_iter().map(|d| d.name).collect())
    }

    /// Bookings per destination, revenue and infants.
    pub async fn demand(&self) -> Result<Demand, DataError> {
        let mut stats = self.stats.clone();
        let destinations = stats
            .get_destination_stats(request(GetDestinationStatsRequest {}))
            .await
            .map_err(DataError::stats)?
            .into_inner();
        let general = stats
            .get_general_stats(request(GetGeneralStatsRequest {}))
            .await
            .map_err(DataError::stats)?
            .into_inner();
        Ok(Demand {
            bookings_by_destination: destinations
                .destinations
                .into_iter()
                .map(|d| (d.destination, d.total_bookings))
                .collect(),
            total_revenue: general.total_revenue.map(|d| d.value).unwrap_or_default(),
            total_infants: general.total_infant_count,
            most_popular: destinations.most_popular,
        })
    }

    /// The contract's demand prediction for a destination (`Ok(None)` if it does not exist).
    pub async fn prediction(&self, destination: &str) -> Result<Option<Prediction>, DataError> {
        let Some(market) = self.market(destination).await? else {
            return Ok(None);
        };
        let demand = self.demand().await?;
        Ok(Some(predict(
            &market.destination,
            &demand.bookings_by_destination,
        )))
    }

    /// Flights whose origin and destination contain the given texts (either may be empty).
    pub async fn search(
        &self,
        origin: &str,
        destination: &str,
    ) -> Result<Vec<FlightSummary>, DataError> {
        let flights = self
            .flights
            .clone()
            .search_flights(request(SearchFlightsRequest {
                origin: origin.trim().to_owned(),
                destination_name: destination.trim().to_owned(),
                limit: Some(20),
            }))
            .await
            .map_err(DataError::flights)?
            .into_inner()
            .flights;
        Ok(flights
            .into_iter()
            .map(|f| FlightSummary {
                flight_number: f.flight_number,
                origin: f.origin,
                destination: f.destination.map(|d| d.name).unwrap_or_default(),
                base_price: f.base_price.map(|d| d.value).unwrap_or_default(),
                seats_available: f.seats_available,
            })
            .collect())
    }
}
