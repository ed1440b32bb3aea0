//! Creating a booking: seat ledger, booking row, outbox event and Idempotency-Key in ONE
//! statement.

use chrono::{DateTime, Utc};
use flightmesh_db::{JsonbText, Violation, constraint_violation};
use flightmesh_runtime::status::Fault;

use super::{Booked, BookingRow, CONFIRMED, IdempotencyKey, NewBooking, Store};
use crate::error::Error;
use crate::events::{BOOKING_CREATED, outbox_event};

/// The booking statement: seat → booking → event → key, each step selecting from the one before,
/// so that a sold-out seat writes nothing at all. Parameters, in order: flight id, capacity,
/// booking id, passenger name, age, pet, flight number, destination id and name, base price,
/// discount, tax, total, user id, created at, event id, event type, exchange, routing key,
/// payload, payload JSON, traceparent, key scope, key, fingerprint. The outbox columns are those
/// of `flightmesh-events::outbox`. It answers `booked`: 1 booked, 0 sold out.
const BOOK_SQL: &str = "\
WITH seat AS (
    INSERT INTO bookings.flight_seats AS s (flight_id, capacity, seats_taken) VALUES ($1, $2, 1)
    ON CONFLICT (flight_id) DO UPDATE SET seats_taken = s.seats_taken + 1
    WHERE s.seats_taken < s.capacity
    RETURNING s.flight_id
), booking AS (
    INSERT INTO bookings.bookings (id, passenger_name, passenger_age, has_pet, flight_id, flight_number,
        destination_id, destination_name, base_price, discount, tax_amount, total_price, user_id, created_at)
    SELECT $3, $4, $5, $6, seat.flight_id, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM seat
    RETURNING id
), event AS (
    INSERT INTO bookings.outbox (event_id, event_type, aggregate_id, exchange, routing_key, payload,
        payload_json, traceparent, created_at)
    SELECT $16, $17, booking.id, $18, $19, $20, $21, $22, $15 FROM booking
    RETURNING id
), claim AS (
    INSERT INTO bookings.idempotency_keys (scope, key, fingerprint, booking_id)
    SELECT $23, $24, $25, booking.id FROM booking WHERE $24::text IS NOT NULL
    RETURNING booking_id
)
SELECT count(*) AS booked FROM event";

/// Now, at PostgreSQL's precision.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

impl Store {
    /// Takes a seat and stores the booking with its `booking.created` event (and its
    /// Idempotency-Key) in ONE statement — one round trip, atomic by itself. A sold-out flight
    /// writes nothing; a key that a concurrent or earlier request holds makes the whole statement
    /// fail on the key's primary key (the insert waits for the other transaction first), and the
    /// earlier request's booking is answered instead.
    /// Long because it binds the statement's 25 parameters, one a line, in `BOOK_SQL`'s order.
    pub async fn book(
        &self,
        new: NewBooking,
        key: Option<IdempotencyKey>,
        traceparent: Option<String>,
    ) -> Result<Booked, Error> {
        // Shared: concurrent bookings' statements are pipelined on it (`SharedConnections`).
        let conn = self.shared.get().await?;
        let id = self.ids.next(&conn).await?;
        let row = BookingRow {
            id,
            passenger_name: new.passenger_name,
            passenger_age: new.passenger_age,
            has_pet: new.has_pet,
            flight_id: new.flight.flight_id,
            flight_number: new.flight.flight_number.clone(),
            destination_id: new.flight.destination_id,
            destination_name: new.flight.destination_name.clone(),
            base_price: new.price.base_price,
            discount: new.price.discount,
            tax_amount: new.price.tax_amount,
            total_price: new.price.total,
            status: CONFIRMED.to_owned(),
            user_id: new.user_id,
            // PostgreSQL keeps microseconds: the row read back later equals this one.
            created_at: now_micros(),
            cancelled_at: None,
        };
        let event = outbox_event(BOOKING_CREATED, &row, &self.exchange, traceparent);
        let (scope, key_text, fingerprint) = match &key {
            Some(k) => (
                Some(k.scope.as_str()),
                Some(k.key.as_str()),
                Some(k.fingerprint.as_str()),
            ),
            None => (None, None, None),
        };
        // `query` reads the answer to the end: in autocommit the COMMIT's own error (a deferred
        // constraint, say) arrives after the row.
        let booked = conn
            .query(
                BOOK_SQL,
                &[
                    &new.flight.flight_id,
                    &new.flight.capacity,
                    &row.id,
                    &row.passenger_name,
                    &row.passenger_age,
                    &row.has_pet,
                    &row.flight_number,
                    &row.destination_id,
                    &row.destination_name,
                    &row.base_price,
                    &row.discount,
                    &row.tax_amount,
                    &row.total_price,
                    &row.user_id,
                    &row.created_at,
                    &event.event_id,
                    &event.event_type,
                    &event.exchange,
                    &event.routing_key,
                    &event.payload,
                    &JsonbText(event.payload_json.as_str()),
                    &event.traceparent,
                    &scope,
                    &key_text,
                    &fingerprint,
                ],
            )
            .await;
        let booked = match booked {
            Ok(rows) => match rows.first().map(|row| row.try_get::<_, i64>("booked")) {
                Some(Ok(count)) => count == 1,
                _ => return Err(Fault::internal("the booking statement answered no count").into()),
            },
            Err(err)
                if constraint_violation(&err)
                    == Some(Violation::Unique("idempotency_keys_pkey")) =>
            {
                let key = key.expect("only a keyed booking writes a key");
                return self
                    .replay(&key)
                    .await?
                    .map(Booked::Replayed)
                    .ok_or_else(|| {
                        Error::from(Fault::internal(
                            "idempotency key committed without a booking",
                        ))
                    });
            }
            Err(err) => return Err(err.into()),
        };
        if booked {
            Ok(Booked::Created(row))
        } else {
            Err(Error::SoldOut {
                flight_number: new.flight.flight_number,
            })
        }
    }
}
