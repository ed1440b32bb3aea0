//! The `flightmesh.flights.v1.FlightService` gRPC handlers: validate, call the store, convert.

use flightmesh_proto::Reply;
use flightmesh_proto::flights::{self as pb, flight_service_server::FlightService};
use flightmesh_proto::money::money;
use flightmesh_runtime::status::{FieldViolations, page};
use rust_decimal::RoundingStrategy;
use tonic::{Request, Response, Status};

use crate::cache::{CatalogCache, Key};
use crate::embeddings::Embeddings;
use crate::error::Error;
use crate::seats::SeatLedger;
use crate::store::{DestinationRow, FlightRow, Store};
use crate::validate;

const DEFAULT_FLIGHT_PAGE: i32 = 100;
const DEFAULT_DESTINATION_PAGE: i32 = 1000;
const DEFAULT_SEARCH_LIMIT: i32 = 20;

/// The catalog's gRPC face.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    seats: SeatLedger,
    embeddings: Embeddings,
    cache: CatalogCache,
}

impl Catalog {
    pub fn new(
        store: Store,
        seats: SeatLedger,
        embeddings: Embeddings,
        cache: CatalogCache,
    ) -> Self {
        Self {
            store,
            seats,
            embeddings,
            cache,
        }
    }

    /// The flights as the API shows them, with the seats their bookings leave free (one call to
    /// the bookings service for the whole list).
    async fn flights(
        &self,
        rows: Vec<(FlightRow, DestinationRow)>,
    ) -> Result<Vec<pb::Flight>, Error> {
        let taken = self
            .seats
            .taken(rows.iter().map(|(f, _)| f.id).collect())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(flight, destination)| {
                let taken = taken.get(&flight.id).copied().unwrap_or(0);
                flight_message(flight, destination, taken)
            })
            .collect())
    }
}

/// The flight as the API shows it, given the seats taken on it.
fn flight_message(flight: FlightRow, destination: DestinationRow, seats_taken: i32) -> pb::Flight {
    pb::Flight {
        id: flight.id,
        flight_number: flight.flight_number,
        origin: flight.origin,
        base_price: money(flight.base_price),
        destination_id: flight.destination_id,
        capacity: flight.capacity,
        seats_available: (flight.capacity - seats_taken).max(0),
        destination: Some(destination_message(destination)),
    }
}

fn destination_message(row: DestinationRow) -> pb::Destination {
    pb::Destination {
        id: row.id,
        name: row.name,
        tax_amount: money(row.tax_amount),
        is_promotion: row.is_promotion,
        allows_pets: row.allows_pets,
        description: (!row.description.is_empty()).then_some(row.description),
    }
}

fn invalid(violations: FieldViolations) -> Status {
    Error::from(violations).into()
}

#[tonic::async_trait]
impl FlightService for Catalog {
    async fn create_destination(
        &self,
        request: Request<pb::CreateDestinationRequest>,
    ) -> Reply<pb::Destination> {
        let new = validate::new_destination(request.get_ref()).map_err(invalid)?;
        let row = self.store.create_destination(&new).await?;
        self.cache.invalidate();
        tracing::info!(destination_id = row.id, name = %row.name, "destination created");
        Ok(Response::new(destination_message(row)))
    }

    async fn list_destinations(
        &self,
        request: Request<pb::ListDestinationsRequest>,
    ) -> Reply<pb::ListDestinationsResponse> {
        let req = request.get_ref();
        FieldViolations::check(req)?;
        let page = page(req.skip, req.limit, DEFAULT_DESTINATION_PAGE);
        let rows = self
            .cache
            .get_or_load(
                Key::Destinations(page.offset, page.limit),
                self.store.list_destinations(page),
            )
            .await?;
        Ok(Response::new(pb::ListDestinationsResponse {
            destinations: rows.into_iter().map(destination_message).collect(),
        }))
    }

    async fn get_destination(
        &self,
        request: Request<pb::GetDestinationRequest>,
    ) -> Reply<pb::Destination> {
        let id = request.get_ref().id;
        let row = self
            .cache
            .get_or_load(Key::Destination(id), self.store.destination(id))
            .await?;
        Ok(Response::new(destination_message(row)))
    }

    async fn create_flight(&self, request: Request<pb::CreateFlightRequest>) -> Reply<pb::Flight> {
        let new = validate::new_flight(request.get_ref()).map_err(invalid)?;
        let (flight, destination) = self.store.create_flight(&new).await?;
        self.cache.invalidate();
        tracing::info!(flight_id = flight.id, flight_number = %flight.flight_number, "flight created");
        // A flight that did not exist a moment ago has no bookings.
        Ok(Response::new(flight_message(flight, destination, 0)))
    }

    async fn list_flights(
        &self,
        request: Request<pb::ListFlightsRequest>,
    ) -> Reply<pb::ListFlightsResponse> {
        let req = request.get_ref();
        FieldViolations::check(req)?;
        let page = page(req.skip, req.limit, DEFAULT_FLIGHT_PAGE);
        // The rows by the catalog's TTL, the seats by theirs.
        let rows = self
            .cache
            .get_or_load(
                Key::FlightRows(page.offset, page.limit),
                self.store.list_flights(page),
            )
            .await?;
        let flights = self
            .cache
            .get_or_load(Key::Flights(page.offset, page.limit), self.flights(rows))
            .await?;
        Ok(Response::new(pb::ListFlightsResponse { flights }))
    }

    async fn get_flight(&self, request: Request<pb::GetFlightRequest>) -> Reply<pb::Flight> {
        let id = request.get_ref().id;
        let row = self
            .cache
            .get_or_load(Key::FlightRow(id), self.store.flight(id))
            .await?;
        let flight = self
            .cache
            .get_or_load(Key::Flight(id), async {
                self.flights(vec![row])
                    .await?
                    .pop()
                    .ok_or(Error::FlightNotFound)
            })
            .await?;
        Ok(Response::new(flight))
    }

    async fn find_destination_by_name(
        &self,
        request: Request<pb::FindDestinationByNameRequest>,
    ) -> Reply<pb::Destination> {
        let row = self
            .store
            .destination_by_name(&request.get_ref().name)
            .await?;
        Ok(Response::new(destination_message(row)))
    }

    async fn get_destination_market(
        &self,
        request: Request<pb::GetDestinationMarketRequest>,
    ) -> Reply<pb::DestinationMarket> {
        let destination = self
            .store
            .destination_by_name(&request.get_ref().destination_name)
            .await?;
        let market = self.store.market(destination.id).await?;
        let taken: i64 = self
            .seats
            .taken(market.flight_ids.clone())
            .await?
            .values()
            .map(|&seats| i64::from(seats))
            .sum();
        Ok(Response::new(pb::DestinationMarket {
            destination: Some(destination_message(destination)),
            flight_count: i32::try_from(market.flight_count).unwrap_or(i32::MAX),
            average_base_price: market
                .average_base_price
                .map(|avg| avg.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
                .and_then(money),
            total_capacity: market.total_capacity,
            seats_available: (market.total_capacity - taken).max(0),
        }))
    }

    async fn search_flights(
        &self,
        request: Request<pb::SearchFlightsRequest>,
    ) -> Reply<pb::ListFlightsResponse> {
        let req = request.get_ref();
        FieldViolations::check(req)?;
        let limit = req.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        let rows = self
            .store
            .search_flights(&req.origin, &req.destination_name, i64::from(limit))
            .await?;
        Ok(Response::new(pb::ListFlightsResponse {
            flights: self.flights(rows).await?,
        }))
    }

    async fn put_destination_embedding(
        &self,
        request: Request<pb::PutDestinationEmbeddingRequest>,
    ) -> Reply<pb::Destination> {
        let new = validate::new_embedding(request.get_ref()).map_err(invalid)?;
        let row = self.embeddings.put(&new).await?;
        self.cache.invalidate();
        tracing::info!(destination_id = row.id, model = %new.model, dimensions = new.vector.len(), "destination embedding stored");
        Ok(Response::new(destination_message(row)))
    }

    async fn search_destination_embeddings(
        &self,
        request: Request<pb::SearchDestinationEmbeddingsRequest>,
    ) -> Reply<pb::SearchDestinationEmbeddingsResponse> {
        let query = validate::vector_query(request.get_ref()).map_err(invalid)?;
        let hits = self
            .embeddings
            .search(&query.model, query.vector, query.limit)
            .await?;
        let ids: Vec<i64> = hits.iter().map(|hit| hit.id).collect();
        let mut rows: std::collections::HashMap<i64, _> = self
            .store
            .destinations_by_id(&ids)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        let matches = hits
            .into_iter()
            .filter_map(|hit| {
                rows.remove(&hit.id).map(|row| pb::DestinationMatch {
                    destination: Some(destination_message(row)),
                    similarity: hit.similarity,
                })
            })
            .collect();
        Ok(Response::new(pb::SearchDestinationEmbeddingsResponse {
            matches,
        }))
    }
}
