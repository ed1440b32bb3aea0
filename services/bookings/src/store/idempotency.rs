//! Idempotency-Keys: the booking a key already answered (a reused key refused), and the purge of
//! expired keys.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_runtime::status::Fault;

use super::{BookingRow, Store};
use crate::error::Error;
use crate::schema::{bookings, idempotency_keys};

/// An Idempotency-Key and the request it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The user id, or "" for anonymous clients.
    pub scope: String,
    pub key: String,
    /// The request's fields; the same key with another fingerprint is refused.
    pub fingerprint: String,
}

impl Store {
    /// The booking an Idempotency-Key already answered, if any; refuses a reused key.
    pub async fn replay(&self, key: &IdempotencyKey) -> Result<Option<BookingRow>, Error> {
        let mut conn = self.conn().await?;
        let stored: Option<(String, Option<i64>)> = idempotency_keys::table
            .find((&key.scope, &key.key))
            .select((idempotency_keys::fingerprint, idempotency_keys::booking_id))
            .first(&mut conn)
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
                .first(&mut conn)
                .await?,
        ))
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
