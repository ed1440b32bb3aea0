//! Booking ids, taken from the `bookings.booking_id_blocks` sequence a block at a time.

use std::sync::Mutex;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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
    pub(super) async fn next(
        &self,
        conn: &AsyncPgConnection,
    ) -> Result<i64, diesel::result::Error> {
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
                .get_result(&mut &*conn)
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
