//! Bookings in PostgreSQL. A booking — seat, row, outbox event and idempotency key — is ONE
//! statement (so one transaction and one round trip); a cancellation is one transaction. No lock
//! is held across a call to another service.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Numeric, Text, Timestamptz,
    Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_db::{DbError, PgConn, PgPool, Violation, constraint_violation};
use flightmesh_events::outbox::{self, OutboxRecord};
use flightmesh_runtime::status::{Fault, Page};
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

/// Ids per block; the migration documents the scheme.
const ID_BLOCK: i64 = 100;

/// Booking ids, taken from `bookings.booking_id_blocks` a block at a time.
pub struct IdBlocks {
    /// The next id and the end of the current block (exclusive).
    range: Mutex<(i64, i64)>,
}

impl IdBlocks {
    fn new() -> Self {
        Self {
            range: Mutex::new((0, 0)),
        }
    }

    /// The next unused booking id.
    async fn next(&self, conn: &mut AsyncPgConnection) -> Result<i64, Error> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        #[derive(QueryableByName)]
        struct Block {
            #[diesel(sql_type = BigInt)]
            block: i64,
        }
        let block: Block =
            flightmesh_db::prepared("SELECT nextval('bookings.booking_id_blocks') AS block")
                .get_result(conn)
                .await?;
        let start = (block.block - 1) * ID_BLOCK + 1;
        let mut range = self
            .range
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another task may have fetched a block meanwhile: the newer block wins, ids are skipped.
        *range = (start + 1, start + ID_BLOCK);
        Ok(start)
    }

    fn take(&self) -> Option<i64> {
        let mut range = self
            .range
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (range.0 < range.1).then(|| {
            range.0 += 1;
            range.0 - 1
        })
    }
}

/// Now, at PostgreSQL's precision.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Data access for bookings.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    exchange: String,
    ids: Arc<IdBlocks>,
}

impl Store {
    /// Events go to `exchange`.
    pub fn new(pool: PgPool, exchange: String) -> Self {
        Self {
            pool,
            exchange,
            ids: Arc::new(IdBlocks::new()),
        }
    }

    async fn conn(&self) -> Result<PgConn<'_>, Error> {
        Ok(self.pool.get().await.map_err(DbError::from)?)
    }

    /// The booking an Idempotency-Key already answered, if any; refuses a reused key.
    pub async fn replay(&self, key: &IdempotencyKey) -> Result<Option<BookingRow>, Error> {
        let mut conn = self.conn().await?;
        replay(&mut conn, key).await
    }

    /// Takes a seat and stores the booking with its `booking.created` event (and its
    /// Idempotency-Key) in ONE statement — one round trip, atomic by itself. A sold-out flight
    /// writes nothing; a key that a concurrent or earlier request holds makes the whole statement
    /// fail on the key's primary key (the insert waits for the other transaction first), and the
    /// earlier request's booking is answered instead.
    pub async fn book(
        &self,
        new: NewBooking,
        key: Option<IdempotencyKey>,
        traceparent: Option<String>,
    ) -> Result<Booked, Error> {
        let mut conn = self.conn().await?;
        let id = self.ids.next(&mut conn).await?;
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
            .load(&mut conn)
            .await;
        let booked = match booked {
            Ok(rows) => rows.iter().any(|r| r.booked == 1),
            Err(err)
                if constraint_violation(&err)
                    == Some(Violation::Unique("idempotency_keys_pkey")) =>
            {
                let key = key.expect("only a keyed booking writes a key");
                return replay(&mut conn, &key)
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

    /// Cancels a booking, frees its seat and stores `booking.cancelled`, in one transaction.
    /// A cancelled booking is answered as it is (no second event). Returns whether it changed.
    /// With an `owner`, another user's booking is [`Error::BookingNotFound`], exactly as a
    /// missing one (its existence is not confirmed) and is left untouched.
    pub async fn cancel(
        &self,
        id: i64,
        owner: Option<&str>,
        traceparent: Option<String>,
    ) -> Result<(BookingRow, bool), Error> {
        let owner = owner.map(str::to_owned);
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        conn.transaction(async |conn: &mut AsyncPgConnection| {
            // An update target cannot be boxed: one statement per case, the same columns set.
            let confirmed = bookings::table
                .filter(bookings::id.eq(id))
                .filter(bookings::status.eq(CONFIRMED));
            let cancel = (bookings::status.eq(CANCELLED), bookings::cancelled_at.eq(diesel::dsl::now));
            let cancelled: Option<BookingRow> = match &owner {
                Some(owner) => diesel::update(confirmed.filter(bookings::user_id.eq(owner)))
                    .set(cancel)
                    .returning(BookingRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?,
                None => diesel::update(confirmed)
                    .set(cancel)
                    .returning(BookingRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?,
            };
            let Some(row) = cancelled else {
                let existing = find(conn, id, owner.as_deref()).await?;
                return existing.map(|row| (row, false)).ok_or(Error::BookingNotFound);
            };
            flightmesh_db::prepared(
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

    /// The booking `id`; with an `owner`, only if it was made under that user id (another
    /// user's booking is [`Error::BookingNotFound`], as a missing one).
    pub async fn booking(&self, id: i64, owner: Option<&str>) -> Result<BookingRow, Error> {
        let mut conn = self.conn().await?;
        find(&mut conn, id, owner)
            .await?
            .ok_or(Error::BookingNotFound)
    }

    /// A page of bookings in id order; with an `owner`, only that user's (index
    /// `bookings_user_id_id_idx`).
    pub async fn list(&self, page: Page, owner: Option<&str>) -> Result<Vec<BookingRow>, Error> {
        Ok(flightmesh_db::read(&self.pool, async |conn| {
            let mut query = bookings::table.select(BookingRow::as_select()).into_boxed();
            if let Some(owner) = owner {
                query = query.filter(bookings::user_id.eq(owner));
            }
            query
                .order(bookings::id)
                .offset(page.offset)
                .limit(page.limit)
                .load(conn)
                .await
        })
        .await?)
    }

    /// Up to `limit` bookings with an id greater than `after_id`, in id order.
    pub async fn bookings_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<BookingRow>, Error> {
        Ok(flightmesh_db::read(&self.pool, async |conn| {
            bookings::table
                .filter(bookings::id.gt(after_id))
                .select(BookingRow::as_select())
                .order(bookings::id)
                .limit(limit)
                .load(conn)
                .await
        })
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
        let rows: Vec<Usage> = flightmesh_db::read(&self.pool, async |conn| {
            flightmesh_db::prepared(
                "SELECT flight_id, seats_taken FROM bookings.flight_seats WHERE flight_id = ANY($1)",
            )
            .bind::<Array<BigInt>, _>(flight_ids)
            .load(conn)
            .await
        })
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

/// The booking `id`, if it exists (and, with an `owner`, was made under that user id).
async fn find(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: Option<&str>,
) -> Result<Option<BookingRow>, Error> {
    let mut query = bookings::table
        .filter(bookings::id.eq(id))
        .select(BookingRow::as_select())
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(bookings::user_id.eq(owner));
    }
    Ok(query.first(conn).await.optional()?)
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
    let booking_id = booking_id
        .ok_or_else(|| Error::from(Fault::internal("idempotency key without a booking")))?;
    Ok(Some(
        bookings::table
            .find(booking_id)
            .select(BookingRow::as_select())
            .first(conn)
            .await?,
    ))
}
