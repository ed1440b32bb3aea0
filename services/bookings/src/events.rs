//! The booking events: a protobuf `BookingEvent` (what RabbitMQ carries) and the same event as
//! JSON (what `GET /bookings/events` shows), built from the booking row as it is at that moment.

use flightmesh_events::{EventStamp, NewEvent};
use flightmesh_proto::bookings::{BookingEvent, BookingSnapshot};
use flightmesh_proto::money::money;
use flightmesh_proto::time::timestamp;
use prost::Message;
use serde::Serialize;

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

/// A booking event's JSON form (the stamp is added by [`EventStamp::event`]), serialized
/// straight from the row.
#[derive(Serialize)]
struct BookingFields<'a> {
    booking_id: i64,
    passenger_name: &'a str,
    passenger_age: i32,
    has_pet: bool,
    /// Exact decimal text: a JSON float would not be.
    total_price: String,
    flight_id: i64,
    flight_number: &'a str,
    destination_id: i64,
    destination_name: &'a str,
    status: &'a str,
    user_id: Option<&'a str>,
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
    let fields = BookingFields {
        booking_id: row.id,
        passenger_name: &row.passenger_name,
        passenger_age: row.passenger_age,
        has_pet: row.has_pet,
        total_price: format!("{:.2}", row.total_price),
        flight_id: row.flight_id,
        flight_number: &row.flight_number,
        destination_id: row.destination_id,
        destination_name: &row.destination_name,
        status: &row.status,
        user_id: row.user_id.as_deref(),
    };
    stamp.event(
        event_type,
        row.id,
        exchange,
        event.encode_to_vec(),
        &fields,
        traceparent,
    )
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_json_form_carries_every_field_and_the_exact_price() {
        let row = BookingRow {
            id: 42,
            passenger_name: "Ana".into(),
            passenger_age: 9,
            has_pet: true,
            flight_id: 3,
            flight_number: "FM101".into(),
            destination_id: 5,
            destination_name: "Cartagena".into(),
            base_price: Decimal::new(100_000, 2),
            discount: Decimal::new(10_000, 2),
            tax_amount: Decimal::new(5_000, 2),
            total_price: Decimal::new(95_000, 2),
            status: "confirmed".into(),
            user_id: Some("u-1".into()),
            created_at: chrono::Utc::now(),
            cancelled_at: None,
        };
        let event = outbox_event(BOOKING_CREATED, &row, "flightmesh.events", None);
        let mut json: serde_json::Value =
            serde_json::from_str(event.payload_json.as_str()).unwrap();
        let stamp = json.as_object_mut().unwrap();
        for key in ["event_id", "occurred_at"] {
            assert!(stamp.remove(key).unwrap().is_string(), "{key}");
        }
        assert_eq!(
            json,
            json!({
                "event_type": "booking.created",
                "booking_id": 42,
                "passenger_name": "Ana",
                "passenger_age": 9,
                "has_pet": true,
                "total_price": "950.00",
                "flight_id": 3,
                "flight_number": "FM101",
                "destination_id": 5,
                "destination_name": "Cartagena",
                "status": "confirmed",
                "user_id": "u-1",
            })
        );
    }
}
