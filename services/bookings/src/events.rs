//! The booking events: a protobuf `BookingEvent` (what RabbitMQ carries) and the same event as
//! JSON (what `GET /bookings/events` shows), built from the booking row as it is at that moment.

use flightmesh_events::{EventStamp, NewEvent};
use flightmesh_proto::bookings::{BookingEvent, BookingSnapshot};
use flightmesh_proto::money::money;
use flightmesh_proto::time::timestamp;
use prost::Message;

use crate::store::BookingRow;

/// A booking was made.
pub const BOOKING_CREATED: &str = "booking.created";
/// A booking was cancelled.
pub const BOOKING_CANCELLED: &str = "booking.cancelled";

/// The snapshot consumers need, from a booking row.
#[must_use]
pub fn snapshot(row: &BookingRow) -> BookingSnapshot {
    BookingSnapshot {
        booking_id: row.id,
        passenger_name: row.passenger_name.clone(),
        passenger_age: row.passenger_age,
        has_pet: row.has_pet,
        total_price: money(row.total_price),
        flight_id: row.flight_id,
        flight_number: row.flight_number.clone(),
        destination_id: row.destination_id,
        destination_name: row.destination_name.clone(),
        status: row.status.clone(),
        created_at: Some(timestamp(row.created_at)),
        user_id: row.user_id.clone(),
    }
}

/// The outbox row for `event_type` about `row`, published to `exchange`.
#[must_use]
pub fn outbox_event(
    event_type: &str,
    row: &BookingRow,
    exchange: &str,
    traceparent: Option<String>,
) -> NewEvent {
    let stamp = EventStamp::now();
    let event = BookingEvent {
        event_id: stamp.id.to_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(timestamp(stamp.occurred_at)),
        booking: Some(snapshot(row)),
    };
    let fields = serde_json::json!({
        "booking_id": row.id,
        "passenger_name": row.passenger_name,
        "passenger_age": row.passenger_age,
        "has_pet": row.has_pet,
        // Exact decimal text: a JSON float would not be.
        "total_price": format!("{:.2}", row.total_price),
        "flight_id": row.flight_id,
        "flight_number": row.flight_number,
        "destination_id": row.destination_id,
        "destination_name": row.destination_name,
        "status": row.status,
        "user_id": row.user_id,
    });
    stamp.event(
        event_type,
        row.id,
        exchange,
        event.encode_to_vec(),
        fields,
        traceparent,
    )
}
