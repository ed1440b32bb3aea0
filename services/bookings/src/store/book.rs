//! Creating a booking: seat ledger, booking row, outbox event and Idempotency-Key in ONE
//! statement.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use flightmesh_db::{Violation, constraint_violation};
use flightmesh_runtime::status::Fault;

use super::idempotency::replay;
use super::{Booked, BookingRow, CONFIRMED, IdempotencyKey, NewBooking, Store};
use crate::error::Error;
use crate::events::{BOOKING_CREATED, outbox_event};

/// The booking statement: seat → booking → event → key, each step selecting from the one before,
/// so that a sold-out seat writes nothing at all. Parameters, in order: flight id, capacity,
/// booking id, passenger name, age, pet, flight number, destination id and name, base price,
/// discount, tax, total, user id, created at, event id, event type, exchange, routing key,
/// payload, payload JSON, traceparent, key scope, key, fingerprint. The outbox columns are those
/// of `flightmesh-events::outbox`.
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

/// What the booking statement answers: 1 booked, 0 sold out.
#[derive(QueryableByName)]
struct BookCount {
    #[diesel(sql_type = BigInt)]
    booked: i64,
}

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
        let id = conn.check(self.ids.next(&conn).await)?;
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
        // `load`, not `get_result`: it reads the answer to the end, and in autocommit the COMMIT's
        // own error (a deferred constraint, say) arrives after the row.
        let booked: Result<Vec<BookCount>, _> = flightmesh_db::prepared(BOOK_SQL)
            .bind::<BigInt, _>(new.flight.flight_id)
            .bind::<Integer, _>(new.flight.capacity)
            .bind::<BigInt, _>(row.id)
            .bind::<Text, _>(&row.passenger_name)
            .bind::<Integer, _>(row.passenger_age)
            .bind::<Bool, _>(row.has_pet)
            .bind::<Text, _>(&row.flight_number)
            .bind::<BigInt, _>(row.destination_id)
            .bind::<Text, _>(&row.destination_name)
            .bind::<Numeric, _>(row.base_price)
            .bind::<Numeric, _>(row.discount)
            .bind::<Numeric, _>(row.tax_amount)
            .bind::<Numeric, _>(row.total_price)
            .bind::<Nullable<Text>, _>(row.user_id.as_deref())
            .bind::<Timestamptz, _>(row.created_at)
            .bind::<SqlUuid, _>(event.event_id)
            .bind::<Text, _>(&event.event_type)
            .bind::<Text, _>(&event.exchange)
            .bind::<Text, _>(&event.routing_key)
            .bind::<Bytea, _>(&event.payload)
            .bind::<Jsonb, _>(&event.payload_json)
            .bind::<Nullable<Text>, _>(event.traceparent.as_deref())
            .bind::<Nullable<Text>, _>(scope)
            .bind::<Nullable<Text>, _>(key_text)
            .bind::<Nullable<Text>, _>(fingerprint)
            .load(&mut &*conn)
            .await;
        let booked = conn.check(booked);
        let booked = match booked {
            Ok(rows) => rows.iter().any(|r| r.booked == 1),
            Err(err)
                if constraint_violation(&err)
                    == Some(Violation::Unique("idempotency_keys_pkey")) =>
            {
                let key = key.expect("only a keyed booking writes a key");
                return replay(&conn, &key)
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
