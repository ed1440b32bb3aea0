//! Bookings in PostgreSQL. A booking — seat, row, outbox event and idempotency key — is ONE
//! statement (so one transaction and one round trip), sent on a connection that concurrent
//! bookings share and pipeline (`flightmesh_db::SharedConnections`); a cancellation is one
//! transaction, on a pooled connection of its own. No lock is held across a call to another
//! service.

mod book;
mod cancel;
mod idempotency;
mod ids;
mod reads;
mod rows;

use std::sync::Arc;

use flightmesh_db::{DbError, PgConn, PgPool, SharedConnections};

use crate::error::Error;

pub use idempotency::IdempotencyKey;
pub use ids::IdBlocks;
pub use rows::{Booked, BookingRow, NewBooking};

/// The outbox of this schema.
pub const OUTBOX: &str = "bookings.outbox";
/// `status` of a booking that holds a seat.
pub const CONFIRMED: &str = "confirmed";
/// `status` of a booking whose seat was given back.
pub const CANCELLED: &str = "cancelled";

/// Data access for bookings.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The booking statement's connections, shared and pipelined.
    shared: Arc<SharedConnections>,
    exchange: String,
    ids: Arc<IdBlocks>,
}

impl Store {
    /// Events go to `exchange`.
    pub fn new(pool: PgPool, shared: SharedConnections, exchange: String) -> Self {
        Self {
            pool,
            shared: Arc::new(shared),
            exchange,
            ids: Arc::new(IdBlocks::new()),
        }
    }

    async fn conn(&self) -> Result<PgConn<'_>, Error> {
        Ok(self.pool.get().await.map_err(DbError::from)?)
    }
}
