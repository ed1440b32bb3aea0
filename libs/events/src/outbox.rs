//! Writing and reading outbox rows. The table lives in the emitting service's schema, created
//! by [`MIGRATIONS`] (`libs/events/migrations/`), which every publishing service runs beside its
//! own migrations: one declaration of the shape the relay and these queries read.

use std::io::Write;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use serde::Serialize;
use uuid::Uuid;

/// The outbox table's migrations (the table, the purge's index), run in the publishing
/// service's schema with its own (`flightmesh_db::migrate` merges them by version).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// An event to store in the outbox, inside the caller's transaction.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id; becomes the AMQP message id.
    pub event_id: Uuid,
    /// e.g. `booking.created`.
    pub event_type: String,
    /// The entity the event is about (booking id, destination id).
    pub aggregate_id: i64,
    /// Where to publish.
    pub exchange: String,
    /// Routing key (flightmesh uses the event type).
    pub routing_key: String,
    /// The encoded protobuf message.
    pub payload: Vec<u8>,
    /// The same event as JSON.
    pub payload_json: EventJson,
    /// W3C trace context of the request that caused it.
    pub traceparent: Option<String>,
}

/// An event's JSON form, serialized once, straight from the event's fields: bound as JSONB
/// without building a `serde_json::Value` tree first (on the booking path that tree was a
/// few dozen allocations per booking; docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJson(String);

impl EventJson {
    /// The JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&serde_json::Value> for EventJson {
    fn from(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }
}

impl ToSql<Jsonb, Pg> for EventJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        // JSONB's binary format: a version byte, then the JSON text (as diesel writes a `Value`).
        out.write_all(&[1])?;
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

/// When an event happened and under which id: what every event starts with, in its protobuf
/// form and its JSON form alike.
#[derive(Debug, Clone, Copy)]
pub struct EventStamp {
    /// v7: time-ordered, so ids sort like the events happened.
    pub id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl EventStamp {
    /// A new id, now.
    #[must_use]
    pub fn now() -> Self {
        Self {
            id: Uuid::now_v7(),
            occurred_at: Utc::now(),
        }
    }

    /// The outbox row of an event of `event_type` about `aggregate_id`, routed by its type:
    /// `payload` is its encoded protobuf, `fields` its JSON form without the stamp
    /// (`event_id`, `event_type` and `occurred_at` are added here). `fields` serializes as a JSON
    /// object: a struct with named fields, a map, or a `json!({…})`.
    #[must_use]
    pub fn event(
        self,
        event_type: &str,
        aggregate_id: i64,
        exchange: &str,
        payload: Vec<u8>,
        fields: &impl Serialize,
        traceparent: Option<String>,
    ) -> NewEvent {
        #[derive(Serialize)]
        struct Stamped<'a, F> {
            event_id: Uuid,
            event_type: &'a str,
            occurred_at: String,
            #[serde(flatten)]
            fields: &'a F,
        }
        let stamped = Stamped {
            event_id: self.id,
            event_type,
            occurred_at: self
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            fields,
        };
        let json = serde_json::to_string(&stamped).unwrap_or_else(|err| {
            // Only fields that are not an object get here: a programming error, yet the event
            // is still stored and published, with its stamp alone as its JSON form.
            tracing::error!(event_type, error = %err, "event fields are not a JSON object");
            serde_json::json!({
                "event_id": stamped.event_id,
                "event_type": event_type,
                "occurred_at": stamped.occurred_at,
            })
            .to_string()
        });
        NewEvent {
            event_id: self.id,
            event_type: event_type.to_owned(),
            aggregate_id,
            exchange: exchange.to_owned(),
            routing_key: event_type.to_owned(),
            payload,
            payload_json: EventJson(json),
            traceparent,
        }
    }
}

/// Appends `event` to `table` (e.g. `bookings.outbox`). Call it inside the transaction that
/// makes the change the event describes; returns the row id.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    table: &str,
    event: &NewEvent,
) -> diesel::QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Id = flightmesh_db::prepared(format!(
        "INSERT INTO {table} (event_id, event_type, aggregate_id, exchange, routing_key, payload, payload_json, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
    ))
    .bind::<SqlUuid, _>(event.event_id)
    .bind::<Text, _>(&event.event_type)
    .bind::<BigInt, _>(event.aggregate_id)
    .bind::<Text, _>(&event.exchange)
    .bind::<Text, _>(&event.routing_key)
    .bind::<Bytea, _>(&event.payload)
    .bind::<Jsonb, _>(&event.payload_json)
    .bind::<Nullable<Text>, _>(event.traceparent.as_deref())
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// One outbox row as listings show it.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct OutboxRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub aggregate_id: i64,
    #[diesel(sql_type = Jsonb)]
    pub payload_json: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub published_at: Option<DateTime<Utc>>,
}

/// The newest `limit` events of `table` (optionally of one type), and how many match in all.
pub async fn list(
    conn: &mut AsyncPgConnection,
    table: &str,
    event_type: Option<&str>,
    limit: i64,
) -> diesel::QueryResult<(i64, Vec<OutboxRecord>)> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let filter = "WHERE ($1::text IS NULL OR event_type = $1)";
    let total: Count =
        flightmesh_db::prepared(format!("SELECT count(*) AS total FROM {table} {filter}"))
            .bind::<Nullable<Text>, _>(event_type)
            .get_result(conn)
            .await?;
    let rows = flightmesh_db::prepared(format!(
        "SELECT id, event_id, event_type, aggregate_id, payload_json, created_at, published_at \
         FROM {table} {filter} ORDER BY id DESC LIMIT $2"
    ))
    .bind::<Nullable<Text>, _>(event_type)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok((total.total, rows))
}

/// Deletes up to `batch` rows of `table` published more than `retention` ago, and returns how
/// many went. Unpublished rows are never touched. The rows are picked with `FOR UPDATE SKIP
/// LOCKED` through the `outbox_published_idx` index, so several replicas purging at once
/// neither wait on each other nor delete twice, and a batch keeps each statement short.
pub async fn purge_published(
    pool: &flightmesh_db::PgPool,
    table: &str,
    retention: std::time::Duration,
    batch: i64,
) -> Result<usize, flightmesh_db::DbError> {
    let mut conn = pool.get().await?;
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    Ok(flightmesh_db::prepared(format!(
        "DELETE FROM {table} WHERE id IN (\
           SELECT id FROM {table} \
           WHERE published_at IS NOT NULL \
             AND published_at < now() - make_interval(secs => $1::double precision / 1000) \
           ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    ))
    .bind::<BigInt, _>(retention_ms)
    .bind::<BigInt, _>(batch)
    .execute(&mut conn)
    .await?)
}

/// How an outbox is kept from growing with the number of events.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Schema-qualified outbox table.
    pub table: String,
    /// Published rows older than this are deleted.
    pub retention: std::time::Duration,
    /// Rows per delete statement.
    pub batch: i64,
    /// Pause between purges once nothing is left to delete.
    pub every: std::time::Duration,
}

impl RetentionConfig {
    /// Defaults for `table`: batches of 5,000 rows, a purge every quarter of the retention
    /// (every minute at most, every second at least), so the table holds about 1.25 times the
    /// retention's worth of events whatever the retention.
    #[must_use]
    pub fn new(table: &str, retention: std::time::Duration) -> Self {
        Self {
            table: table.to_owned(),
            retention,
            batch: 5_000,
            every: (retention / 4).clamp(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(60),
            ),
        }
    }
}

/// Purges published rows until `shutdown`: full batches back to back, then a pause of
/// `config.every`. Meant to run as a supervised task next to the relay.
pub async fn purge_published_forever(
    pool: flightmesh_db::PgPool,
    config: RetentionConfig,
    shutdown: flightmesh_runtime::CancellationToken,
) {
    loop {
        let mut purged = 0usize;
        loop {
            match purge_published(&pool, &config.table, config.retention, config.batch).await {
                Ok(deleted) => {
                    purged += deleted;
                    if usize::try_from(config.batch).map_or(true, |batch| deleted < batch) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(table = %config.table, error = %err, "purging the outbox failed; will retry");
                    break;
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
        if purged > 0 {
            tracing::info!(table = %config.table, purged, "published outbox rows purged");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn stamp() -> EventStamp {
        EventStamp {
            id: Uuid::parse_str("0192f0c2-7a4b-7cc3-9d1e-2b3c4d5e6f70").unwrap(),
            occurred_at: DateTime::from_timestamp_micros(1_764_892_800_123_456).unwrap(),
        }
    }

    fn json_of(event: &NewEvent) -> Value {
        serde_json::from_str(event.payload_json.as_str()).unwrap()
    }

    #[test]
    fn the_json_form_is_the_stamp_and_the_fields_in_one_object() {
        #[derive(Serialize)]
        struct Fields<'a> {
            booking_id: i64,
            user_id: Option<&'a str>,
        }
        let fields = Fields {
            booking_id: 7,
            user_id: None,
        };
        let event = stamp().event("booking.created", 7, "x", vec![], &fields, None);
        assert_eq!(
            json_of(&event),
            json!({
                "event_id": "0192f0c2-7a4b-7cc3-9d1e-2b3c4d5e6f70",
                "event_type": "booking.created",
                "occurred_at": "2025-12-05T00:00:00.123456Z",
                "booking_id": 7,
                "user_id": null,
            })
        );
        assert_eq!(event.routing_key, "booking.created");
        // A `json!` object reads the same as a struct.
        let from_value = stamp().event(
            "booking.created",
            7,
            "x",
            vec![],
            &json!({"booking_id": 7, "user_id": null}),
            None,
        );
        assert_eq!(json_of(&from_value), json_of(&event));
    }

    #[test]
    fn fields_that_are_not_an_object_leave_the_stamp_alone() {
        let event = stamp().event("catalog.changed", 1, "x", vec![], &json!([1, 2]), None);
        assert_eq!(
            json_of(&event),
            json!({
                "event_id": "0192f0c2-7a4b-7cc3-9d1e-2b3c4d5e6f70",
                "event_type": "catalog.changed",
                "occurred_at": "2025-12-05T00:00:00.123456Z",
            })
        );
    }
}
