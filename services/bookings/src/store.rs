//! Bookings in PostgreSQL. A booking — seat, row, outbox event and idempotency key — is ONE
//! transaction; so is a cancellation. No lock is held across a call to another service.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_db::{DbError, PgConn, PgPool};
use flightmesh_events::outbox::{self, OutboxRecord};
use flightmesh_runtime::status::Page;
use rust_decimal::Decimal;

use crate::error::Error;
use crate::events::{BOOKING_CANCELLED, BOOKING_CREATED, outbox_event};
use crate::flights::FlightSnapshot;
use crate::pricing::Price;
use crate::schema::{bookings, idempotency_keys};

/// The outbox of this schema.
pub const OUTBOX: &str = "bookings.outbox";
/// `status` of a booking that holds a seat.
pub const CONFIRMED: &str = "confirmed";
/// `status` of a booking whose seat was given back.
pub const CANCELLED: &str = "cancelled";

/// A booking row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: i64,
    pub passenger_name: String,
    pub passenger_age: i32,
    pub has_pet: bool,
    pub flight_id: i64,
    pub flight_number: String,
    pub destination_id: i64,
    pub destination_name: String,
    pub base_price: Decimal,
    pub discount: Decimal,
    pub tax_amount: Decimal,
    pub total_price: Decimal,
    pub status: String,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A validated, priced booking about to be stored.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub passenger_name: String,
    pub passenger_age: i32,
    pub has_pet: bool,
    pub user_id: Option<String>,
    pub flight: FlightSnapshot,
    pub price: Price,
}

/// An Idempotency-Key and the request it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The user id, or "" for anonymous clients.
    pub scope: String,
    pub key: String,
    /// The request's fields; the same key with another fingerprint is refused.
    pub fingerprint: String,
}

/// What creating a booking did.
#[derive(Debug, Clone)]
pub enum Booked {
    /// A new booking (and its event).
    Created(BookingRow),
    /// The Idempotency-Key's earlier booking; nothing new was written.
    Replayed(BookingRow),
}

/// Data access for bookings.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    exchange: String,
}

impl Store {
    /// Events go to `exchange`.
    pub fn new(pool: PgPool, exchange: String) -> Self {
        Self { pool, exchange }
    }

    async fn conn(&self) -> Result<PgConn<'_>, Error> {
        Ok(self.pool.get().await.map_err(DbError::from)?)
    }

    /// The booking an Idempotency-Key already answered, if any; refuses a reused key.
    pub async fn replay(&self, key: &IdempotencyKey) -> Result<Option<BookingRow>, Error> {
        let mut conn = self.conn().await?;
        replay(&mut conn, key).await
    }

    /// Takes a seat and stores the booking with its `booking.created` event, in one
    /// transaction. With a key, a concurrent or earlier request with the same key gets that
    /// request's booking instead (the unique key makes the second insert wait for the first).
    pub async fn book(
        &self,
        new: NewBooking,
        key: Option<IdempotencyKey>,
        traceparent: Option<String>,
    ) -> Result<Booked, Error> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        let attempt = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                if let Some(key) = &key {
                    let claimed = diesel::insert_into(idempotency_keys::table)
                        .values((
                            idempotency_keys::scope.eq(&key.scope),
                            idempotency_keys::key.eq(&key.key),
                            idempotency_keys::fingerprint.eq(&key.fingerprint),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    if claimed == 0 {
                        // Someone else's key: resolved outside the transaction.
                        return Ok(None);
                    }
                }
                take_seat(conn, &new.flight).await?;
                let row: BookingRow = diesel::insert_into(bookings::table)
                    .values((
                        bookings::passenger_name.eq(&new.passenger_name),
                        bookings::passenger_age.eq(new.passenger_age),
                        bookings::has_pet.eq(new.has_pet),
                        bookings::flight_id.eq(new.flight.flight_id),
                        bookings::flight_number.eq(&new.flight.flight_number),
                        bookings::destination_id.eq(new.flight.destination_id),
                        bookings::destination_name.eq(&new.flight.destination_name),
                        bookings::base_price.eq(new.price.base_price),
                        bookings::discount.eq(new.price.discount),
                        bookings::tax_amount.eq(new.price.tax_amount),
                        bookings::total_price.eq(new.price.total),
                        bookings::user_id.eq(&new.user_id),
                    ))
                    .returning(BookingRow::as_returning())
                    .get_result(conn)
                    .await?;
                outbox::insert(
                    conn,
                    OUTBOX,
                    &outbox_event(BOOKING_CREATED, &row, &exchange, traceparent),
                )
                .await?;
                if let Some(key) = &key {
                    diesel::update(idempotency_keys::table.find((&key.scope, &key.key)))
                        .set(idempotency_keys::booking_id.eq(row.id))
                        .execute(conn)
                        .await?;
                }
                Ok::<_, Error>(Some(row))
            })
            .await?;
        match attempt {
            Some(row) => Ok(Booked::Created(row)),
            None => {
                let key = key.expect("only a keyed request finds its key taken");
                replay(conn, &key)
                    .await?
                    .map(Booked::Replayed)
                    .ok_or_else(|| {
                        Error::Internal("idempotency key committed without a booking".into())
                    })
            }
        }
    }

    /// Cancels a booking, frees its seat and stores `booking.cancelled`, in one transaction.
    /// A cancelled booking is answered as it is (no second event). Returns whether it changed.
    pub async fn cancel(
        &self,
        id: i64,
        traceparent: Option<String>,
    ) -> Result<(BookingRow, bool), Error> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        conn.transaction(async |conn: &mut AsyncPgConnection| {
            let cancelled: Option<BookingRow> = diesel::update(
                bookings::table.filter(bookings::id.eq(id)).filter(bookings::status.eq(CONFIRMED)),
            )
            .set((bookings::status.eq(CANCELLED), bookings::cancelled_at.eq(diesel::dsl::now)))
            .returning(BookingRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = cancelled else {
                let existing = bookings::table
                    .find(id)
                    .select(BookingRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                return existing.map(|row| (row, false)).ok_or(Error::BookingNotFound);
            };
            diesel::sql_query(
                "UPDATE bookings.flight_seats SET seats_taken = seats_taken - 1 WHERE flight_id = $1",
            )
            .bind::<BigInt, _>(row.flight_id)
            .execute(conn)
            .await?;
            outbox::insert(conn, OUTBOX, &outbox_event(BOOKING_CANCELLED, &row, &exchange, traceparent)).await?;
            Ok::<_, Error>((row, true))
        })
        .await
    }

    pub async fn booking(&self, id: i64) -> Result<BookingRow, Error> {
        let mut conn = self.conn().await?;
        bookings::table
            .find(id)
            .select(BookingRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or(Error::BookingNotFound)
    }

    pub async fn list(&self, page: Page) -> Result<Vec<BookingRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(bookings::table
            .select(BookingRow::as_select())
            .order(bookings::id)
            .offset(page.offset)
            .limit(page.limit)
            .load(&mut conn)
            .await?)
    }

    /// Up to `limit` bookings with an id greater than `after_id`, in id order.
    pub async fn bookings_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<BookingRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(bookings::table
            .filter(bookings::id.gt(after_id))
            .select(BookingRow::as_select())
            .order(bookings::id)
            .limit(limit)
            .load(&mut conn)
            .await?)
    }

    /// The event log, newest first, and how many events match.
    pub async fn events(
        &self,
        event_type: Option<&str>,
        limit: i64,
    ) -> Result<(i64, Vec<OutboxRecord>), Error> {
        let mut conn = self.conn().await?;
        Ok(outbox::list(&mut conn, OUTBOX, event_type, limit).await?)
    }

    /// Seats taken per flight, for the flights that have any.
    pub async fn seat_usage(&self, flight_ids: &[i64]) -> Result<Vec<(i64, i32)>, Error> {
        #[derive(QueryableByName)]
        struct Usage {
            #[diesel(sql_type = BigInt)]
            flight_id: i64,
            #[diesel(sql_type = Integer)]
            seats_taken: i32,
        }
        let mut conn = self.conn().await?;
        let rows: Vec<Usage> = diesel::sql_query(
            "SELECT flight_id, seats_taken FROM bookings.flight_seats WHERE flight_id = ANY($1)",
        )
        .bind::<Array<BigInt>, _>(flight_ids)
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|u| (u.flight_id, u.seats_taken))
            .collect())
    }

    /// Forgets Idempotency-Keys older than `retention`; returns how many.
    pub async fn purge_idempotency_keys(&self, retention: Duration) -> Result<usize, Error> {
        let mut conn = self.conn().await?;
        let cutoff =
            Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(2));
        Ok(
            diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
                .execute(&mut conn)
                .await?,
        )
    }
}

/// Takes one seat of the flight, creating its ledger row on the first booking. One statement:
/// the row lock it takes is the only serialization concurrent bookings of a flight see.
async fn take_seat(conn: &mut AsyncPgConnection, flight: &FlightSnapshot) -> Result<(), Error> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = Integer)]
        #[allow(dead_code)]
        seats_taken: i32,
    }
    let taken: Option<Taken> = diesel::sql_query(
        "INSERT INTO bookings.flight_seats AS s (flight_id, capacity, seats_taken) VALUES ($1, $2, 1) \
         ON CONFLICT (flight_id) DO UPDATE SET seats_taken = s.seats_taken + 1 \
         WHERE s.seats_taken < s.capacity \
         RETURNING s.seats_taken",
    )
    .bind::<BigInt, _>(flight.flight_id)
    .bind::<Integer, _>(flight.capacity)
    .get_result(conn)
    .await
    .optional()?;
    match taken {
        Some(_) => Ok(()),
        None => Err(Error::SoldOut {
            flight_number: flight.flight_number.clone(),
        }),
    }
}

async fn replay(
    conn: &mut AsyncPgConnection,
    key: &IdempotencyKey,
) -> Result<Option<BookingRow>, Error> {
    let stored: Option<(String, Option<i64>)> = idempotency_keys::table
        .find((&key.scope, &key.key))
        .select((idempotency_keys::fingerprint, idempotency_keys::booking_id))
        .first(conn)
        .await
        .optional()?;
    let Some((fingerprint, booking_id)) = stored else {
        return Ok(None);
    };
    if fingerprint != key.fingerprint {
        return Err(Error::IdempotencyKeyReused);
    }
    let booking_id =
        booking_id.ok_or_else(|| Error::Internal("idempotency key without a booking".into()))?;
    Ok(Some(
        bookings::table
            .find(booking_id)
            .select(BookingRow::as_select())
            .first(conn)
            .await?,
    ))
}
