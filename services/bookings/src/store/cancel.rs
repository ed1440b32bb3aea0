//! Cancelling a booking: the booking row, the seat given back and the `booking.cancelled` event,
//! in one transaction.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_events::outbox;

use super::reads::find;
use super::{BookingRow, CANCELLED, CONFIRMED, OUTBOX, Store};
use crate::error::Error;
use crate::events::{BOOKING_CANCELLED, outbox_event};
use crate::schema::bookings;

impl Store {
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
}
