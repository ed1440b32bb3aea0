//! Catalog events: `destination.created` and `destination.described`, as a protobuf
//! `DestinationEvent` in the outbox, and the `catalog.changed` notice that tells every flights
//! replica to drop its cached catalog ([`crate::cache`]).

use diesel_async::AsyncPgConnection;
use flightmesh_events::{EventStamp, NewEvent, outbox};
use flightmesh_proto::flights::{CatalogChanged, DestinationEvent};
use flightmesh_proto::money::money;
use flightmesh_proto::time::timestamp;
use prost::Message;

use crate::store::DestinationRow;

/// The outbox of this schema.
pub const OUTBOX: &str = "flights.outbox";
/// A destination was created.
pub const DESTINATION_CREATED: &str = "destination.created";

/// A destination's description changed (it was embedded for the semantic search).
pub const DESTINATION_DESCRIBED: &str = "destination.described";

/// Something in the catalog changed: cached catalogs are stale.
pub const CATALOG_CHANGED: &str = "catalog.changed";

/// Writes, in the caller's transaction, the outbox row telling every flights replica that
/// `entity` `id` changed.
pub async fn record_catalog_changed(
    conn: &mut AsyncPgConnection,
    entity: &str,
    id: i64,
    exchange: &str,
) -> diesel::QueryResult<i64> {
    outbox::insert(conn, OUTBOX, &catalog_changed(entity, id, exchange)).await
}

/// The outbox row telling every flights replica that `entity` `id` changed.
#[must_use]
fn catalog_changed(entity: &str, id: i64, exchange: &str) -> NewEvent {
    let stamp = EventStamp::now();
    let event = CatalogChanged {
        event_id: stamp.id.to_string(),
        occurred_at: Some(timestamp(stamp.occurred_at)),
        entity: entity.to_owned(),
        id,
    };
    stamp.event(
        CATALOG_CHANGED,
        id,
        exchange,
        event.encode_to_vec(),
        &serde_json::json!({"entity": entity, "id": id}),
        flightmesh_runtime::trace::current_traceparent(),
    )
}

/// The outbox row announcing `row`, published to `exchange`.
#[must_use]
pub fn destination_created(row: &DestinationRow, exchange: &str) -> NewEvent {
    destination_event(row, exchange, DESTINATION_CREATED)
}

/// The outbox row announcing `row`'s new description, published to `exchange`.
#[must_use]
pub fn destination_described(row: &DestinationRow, exchange: &str) -> NewEvent {
    destination_event(row, exchange, DESTINATION_DESCRIBED)
}

fn destination_event(row: &DestinationRow, exchange: &str, event_type: &str) -> NewEvent {
    let stamp = EventStamp::now();
    let event = DestinationEvent {
        event_id: stamp.id.to_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(timestamp(stamp.occurred_at)),
        destination_id: row.id,
        destination_name: row.name.clone(),
        tax_amount: money(row.tax_amount),
        is_promotion: row.is_promotion,
        allows_pets: row.allows_pets,
        description: row.description.clone(),
    };
    stamp.event(
        event_type,
        row.id,
        exchange,
        event.encode_to_vec(),
        &serde_json::json!({
            "destination_id": row.id,
            "destination_name": row.name,
            "tax_amount": format!("{:.2}", row.tax_amount),
            "is_promotion": row.is_promotion,
            "allows_pets": row.allows_pets,
            "description": row.description,
        }),
        // The RPC span that created the destination, when tracing is on.
        flightmesh_runtime::trace::current_traceparent(),
    )
}
