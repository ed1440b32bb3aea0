//! The `flightmesh.bookings.v1.BookingService` gRPC handlers.

use std::pin::Pin;
use std::sync::Arc;

use flightmesh_proto::Reply;
use flightmesh_proto::bookings::{self as pb, booking_service_server::BookingService};
use flightmesh_proto::money::money;
use flightmesh_proto::time::timestamp;
use flightmesh_runtime::caller::{Caller, Policy, Scope};
use flightmesh_runtime::metrics::Metric;
use flightmesh_runtime::series::Series;
use flightmesh_runtime::status::{Fault, FieldViolations, page};
use flightmesh_runtime::trace;
use tokio::sync::Notify;
use tokio_stream::Stream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::events::snapshot;
use crate::flights::FlightCatalog;
use crate::pricing::Price;
use crate::store::{Booked, BookingRow, IdempotencyKey, NewBooking, Store};

const DEFAULT_PAGE: i32 = 100;
const DEFAULT_EVENTS: i32 = 50;
const MAX_KEY_LEN: usize = 255;
/// Bookings read per page while streaming snapshots.
const STREAM_PAGE: i64 = 500;

/// Metadata carrying the client's Idempotency-Key header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The bookings service's gRPC face.
///
/// Ownership (ADR 0010): under the production policy every booking RPC a client reaches through
/// the gateway needs the forwarded caller (`x-user-id`, `x-user-role`); a user gets, lists and
/// cancels only the bookings made under their user id (another's is NOT_FOUND, as a missing one),
/// an admin all of them, and the event log is admin-only. `GetSeatUsage` and
/// `StreamBookingSnapshots` serve other services (flights, the stats rebuild), carry no passenger
/// data to a client and stay open to the mesh. The compatible policy keeps everything open.
pub struct Bookings {
    store: Store,
    catalog: Arc<FlightCatalog>,
    /// Wakes the outbox relay after a commit, so events leave at once.
    relay: Arc<Notify>,
    policy: Policy,
    /// `bookings_total` by destination, registered once per destination.
    booked: Series<metrics::Counter>,
    /// `booking_cancellations_total` by destination.
    cancelled: Series<metrics::Counter>,
}

impl Bookings {
    pub fn new(
        store: Store,
        catalog: Arc<FlightCatalog>,
        relay: Arc<Notify>,
        policy: Policy,
    ) -> Self {
        Self {
            store,
            catalog,
            relay,
            policy,
            booked: Series::new(),
            cancelled: Series::new(),
        }
    }

    /// The bookings the request's caller may see and change.
    fn scope(&self, metadata: &MetadataMap) -> Result<Scope, Status> {
        Ok(self
            .policy
            .owned_scope(Caller::from_metadata(metadata).as_ref())?)
    }
}

/// The booking as the API shows it.
impl From<BookingRow> for pb::Booking {
    fn from(row: BookingRow) -> Self {
        Self {
            id: row.id,
            passenger_age: row.passenger_age,
            has_pet: row.has_pet,
            flight_id: row.flight_id,
            total_price: money(row.total_price),
            created_at: Some(timestamp(row.created_at)),
            status: row.status,
            price: Some(pb::PriceBreakdown {
                base_price: money(row.base_price),
                discount: money(row.discount),
                tax_amount: money(row.tax_amount),
                total: money(row.total_price),
            }),
            passenger_name: row.passenger_name,
        }
    }
}

/// The bookings service's domain metrics.
pub const METRICS: &[Metric] = &[
    Metric::counter("bookings_total", "Bookings created, by destination").labelled(),
    Metric::counter(
        "booking_cancellations_total",
        "Bookings cancelled, by destination",
    )
    .labelled(),
    Metric::histogram(
        "booking_price_amount",
        "Total price of each booking created",
    ),
];

fn text_metadata(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The request's Idempotency-Key, scoped to the caller; `None` without the header.
fn idempotency_key(
    metadata: &MetadataMap,
    user_id: Option<&str>,
    req: &pb::CreateBookingRequest,
    passenger_name: &str,
) -> Result<Option<IdempotencyKey>, Error> {
    let Some(key) = metadata.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = key
        .to_str()
        .map_err(|_| Error::InvalidIdempotencyKey)?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidIdempotencyKey);
    }
    Ok(Some(IdempotencyKey {
        scope: user_id.unwrap_or_default().to_owned(),
        key: key.to_owned(),
        fingerprint: serde_json::json!([
            passenger_name,
            req.passenger_age,
            req.has_pet,
            req.flight_id
        ])
        .to_string(),
    }))
}

/// The protos' rules for a booking; the passenger's name as stored (trimmed).
fn validate(req: &pb::CreateBookingRequest) -> Result<String, Error> {
    FieldViolations::of(req).finish()?;
    Ok(req.passenger_name.trim().to_owned())
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::BookingSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl BookingService for Bookings {
    // Associated types first, methods in the proto's order.
    type StreamBookingSnapshotsStream = SnapshotStream;

    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Reply<pb::Booking> {
        let req = request.get_ref();
        let metadata = request.metadata();
        // Under the production policy only a signed-in caller books.
        self.scope(metadata)?;
        // Input rules next: a bad request is a 422 whatever the flight.
        let passenger_name = validate(req)?;
        let user_id = Caller::from_metadata(metadata).map(|caller| caller.user_id);
        // Keys are scoped by user id, so a replay answers the caller's own booking; checked again
        // so that a replay can never hand out another user's booking.
        let key_owner = user_id.clone();
        let replayed = |row: BookingRow| {
            if self.policy == Policy::Production && row.user_id != key_owner {
                return Err(Status::from(Error::IdempotencyKeyReused));
            }
            Ok(Response::new(pb::Booking::from(row)))
        };
        let key = idempotency_key(metadata, user_id.as_deref(), req, &passenger_name)?;
        if let Some(key) = &key
            && let Some(row) = self.store.replay(key).await?
        {
            return replayed(row);
        }

        let flight = self.catalog.flight(req.flight_id).await?;
        if req.has_pet && !flight.allows_pets {
            return Err(Error::PetsNotAllowed {
                destination: flight.destination_name,
            }
            .into());
        }
        let price = Price::compute(flight.base_price, flight.tax_amount, flight.is_promotion);
        let new = NewBooking {
            passenger_name,
            passenger_age: req.passenger_age,
            has_pet: req.has_pet,
            user_id,
            flight,
            price,
        };
        // Taken here, inside the RPC span, so the event's consumer joins this trace.
        let traceparent =
            trace::outgoing_traceparent(text_metadata(metadata, trace::TRACEPARENT).as_deref());
        // The transaction runs to its end even if the caller goes away meanwhile: a dropped
        // future would leave the connection mid-transaction and the client without its answer
        // on retry (the Idempotency-Key then finds the committed booking).
        let store = self.store.clone();
        let booked = tokio::spawn(async move { store.book(new, key, traceparent).await })
            .await
            .map_err(|err| Error::from(Fault::internal(err)))??;
        let row = match booked {
            Booked::Created(row) => {
                self.relay.notify_one();
                self.booked
                    .get(&row.destination_name, || {
                        metrics::counter!("bookings_total", "destination" => row.destination_name.clone())
                    })
                    .increment(1);
                metrics::histogram!("booking_price_amount")
                    .record(row.total_price.try_into().unwrap_or(0.0));
                tracing::debug!(booking_id = row.id, flight_id = row.flight_id, total = %row.total_price, "booking created");
                row
            }
            Booked::Replayed(row) => return replayed(row),
        };
        Ok(Response::new(pb::Booking::from(row)))
    }

    async fn list_bookings(
        &self,
        request: Request<pb::ListBookingsRequest>,
    ) -> Reply<pb::ListBookingsResponse> {
        let scope = self.scope(request.metadata())?;
        let req = request.get_ref();
        FieldViolations::check(req)?;
        let page = page(req.skip, req.limit, DEFAULT_PAGE);
        let rows = self.store.list(page, scope.owner()).await?;
        Ok(Response::new(pb::ListBookingsResponse {
            bookings: rows.into_iter().map(pb::Booking::from).collect(),
        }))
    }

    async fn list_booking_events(
        &self,
        request: Request<pb::ListBookingEventsRequest>,
    ) -> Reply<pb::ListBookingEventsResponse> {
        // Every booking's passenger, of every user: admin-only under the production policy.
        self.policy
            .admin_only(Caller::from_metadata(request.metadata()).as_ref())?;
        let req = request.get_ref();
        FieldViolations::check(req)?;
        let limit = page(None, req.limit, DEFAULT_EVENTS).limit;
        let event_type = req
            .event_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let (total, rows) = self.store.events(event_type, limit).await?;
        Ok(Response::new(pb::ListBookingEventsResponse {
            total,
            events: rows
                .into_iter()
                .map(|row| pb::BookingEventRecord {
                    id: row.id,
                    event_type: row.event_type,
                    booking_id: row.aggregate_id,
                    payload: Some(flightmesh_proto::json::to_struct(&row.payload_json)),
                    created_at: Some(timestamp(row.created_at)),
                    event_id: row.event_id.to_string(),
                    published_at: row.published_at.map(timestamp),
                })
                .collect(),
        }))
    }

    async fn get_booking(&self, request: Request<pb::GetBookingRequest>) -> Reply<pb::Booking> {
        let scope = self.scope(request.metadata())?;
        let row = self
            .store
            .booking(request.get_ref().id, scope.owner())
            .await?;
        Ok(Response::new(pb::Booking::from(row)))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Reply<pb::Booking> {
        let scope = self.scope(request.metadata())?;
        let id = request.get_ref().id;
        let traceparent = trace::outgoing_traceparent(
            text_metadata(request.metadata(), trace::TRACEPARENT).as_deref(),
        );
        let store = self.store.clone();
        let (row, changed) =
            tokio::spawn(async move { store.cancel(id, scope.owner(), traceparent).await })
                .await
                .map_err(|err| Error::from(Fault::internal(err)))??;
        if changed {
            self.relay.notify_one();
            self.cancelled
                .get(&row.destination_name, || {
                    metrics::counter!("booking_cancellations_total", "destination" => row.destination_name.clone())
                })
                .increment(1);
            tracing::info!(booking_id = row.id, "booking cancelled");
        }
        Ok(Response::new(pb::Booking::from(row)))
    }

    async fn get_seat_usage(
        &self,
        request: Request<pb::GetSeatUsageRequest>,
    ) -> Reply<pb::GetSeatUsageResponse> {
        FieldViolations::check(request.get_ref())?;
        let ids = &request.get_ref().flight_ids;
        let usage = self.store.seat_usage(ids).await?;
        Ok(Response::new(pb::GetSeatUsageResponse {
            seats_taken: usage.into_iter().collect(),
        }))
    }

    async fn stream_booking_snapshots(
        &self,
        request: Request<pb::StreamBookingSnapshotsRequest>,
    ) -> Reply<Self::StreamBookingSnapshotsStream> {
        let mut after = request.get_ref().after_id;
        let store = self.store.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_PAGE as usize);
        tokio::spawn(async move {
            loop {
                let rows = match store.bookings_after(after, STREAM_PAGE).await {
                    Ok(rows) => rows,
                    Err(err) => {
                        let _ = tx.send(Err(Status::from(err))).await;
                        return;
                    }
                };
                let Some(last) = rows.last() else { return };
                after = last.id;
                for row in &rows {
                    if tx.send(Ok(snapshot(row))).await.is_err() {
                        return; // the caller went away
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
