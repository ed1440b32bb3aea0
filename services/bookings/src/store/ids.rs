//! Booking ids, taken from the `bookings.booking_id_blocks` sequence a block at a time.

use std::sync::Mutex;

use flightmesh_db::SharedConn;

/// Ids per block; the migration documents the scheme.
const ID_BLOCK: i64 = 100;

/// Booking ids, taken from `bookings.booking_id_blocks` a block at a time.
pub struct IdBlocks {
    /// The next id and the end of the current block (exclusive).
    range: Mutex<(i64, i64)>,
}

impl IdBlocks {
    pub(super) fn new() -> Self {
        Self {
            range: Mutex::new((0, 0)),
        }
    }

    /// The next unused booking id.
    pub(super) async fn next(&self, conn: &SharedConn<'_>) -> Result<i64, diesel::result::Error> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let rows = conn
            .query("SELECT nextval('bookings.booking_id_blocks')", &[])
            .await?;
        let block: i64 = rows
            .first()
            .and_then(|row| row.try_get(0).ok())
            .ok_or(diesel::result::Error::NotFound)?;
        let start = (block - 1) * ID_BLOCK + 1;
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
