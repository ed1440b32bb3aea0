//! The relay's side of the outbox table: claiming pending rows under a lease, then marking them
//! published or releasing them for another attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bytea, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use flightmesh_db::DbError;

use super::Relay;

/// A claimed outbox row, ready to publish.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub(super) struct PendingRow {
    #[diesel(sql_type = BigInt)]
    pub(super) id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub(super) event_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub(super) event_type: String,
    #[diesel(sql_type = Text)]
    pub(super) exchange: String,
    #[diesel(sql_type = Text)]
    pub(super) routing_key: String,
    #[diesel(sql_type = Bytea)]
    pub(super) payload: Vec<u8>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(super) traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub(super) created_at: DateTime<Utc>,
}

impl Relay {
    /// Reserves up to `batch_size` unclaimed pending rows, oldest first.
    pub(super) async fn claim(&self) -> Result<Vec<PendingRow>, DbError> {
        let table = &self.config.table;
        let mut conn = self.pool.get().await?;
        Ok(flightmesh_db::prepared(format!(
            "UPDATE {table} SET claimed_until = now() + $2, attempts = attempts + 1 \
             WHERE id IN ( \
                 SELECT id FROM {table} \
                 WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now()) \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, event_id, event_type, exchange, routing_key, payload, traceparent, created_at"
        ))
        .bind::<BigInt, _>(self.config.batch_size)
        .bind::<Interval, _>(pg_interval(self.config.lease))
        .load::<PendingRow>(&mut conn)
        .await
        .map(|mut rows| {
            rows.sort_by_key(|r| r.id);
            rows
        })?)
    }

    /// Marks confirmed rows published and releases the others for another attempt.
    pub(super) async fn settle(&self, sent: &[i64], failed: &[i64]) -> Result<(), DbError> {
        let table = &self.config.table;
        let mut conn = self.pool.get().await?;
        // Both give up the lease; only the confirmed ones are done.
        for (ids, set) in [
            (sent, "published_at = now(), claimed_until = NULL"),
            (failed, "claimed_until = NULL"),
        ] {
            if ids.is_empty() {
                continue;
            }
            flightmesh_db::prepared(format!("UPDATE {table} SET {set} WHERE id = ANY($1)"))
                .bind::<Array<BigInt>, _>(ids)
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// A `std` duration as a PostgreSQL interval.
fn pg_interval(duration: Duration) -> diesel::pg::data_types::PgInterval {
    diesel::pg::data_types::PgInterval::from_microseconds(
        i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    )
}
