//! Reads: one booking, pages of bookings, the event log and the seats taken per flight.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use flightmesh_events::outbox::{self, OutboxRecord};
use flightmesh_runtime::status::Page;

use super::{BookingRow, OUTBOX, Store};
use crate::error::Error;
use crate::schema::bookings;

impl Store {
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
}

/// The booking `id`, if it exists (and, with an `owner`, was made under that user id).
pub(super) async fn find(
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
