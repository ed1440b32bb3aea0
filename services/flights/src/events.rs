//! Catalog events: `destination.created`, as a protobuf `DestinationEvent` in the outbox.

use chrono::Utc;
use flightmesh_events::NewEvent;
use flightmesh_proto::flights::DestinationEvent;
use flightmesh_proto::money::money;
use flightmesh_proto::time::timestamp;
use prost::Message;
use uuid::Uuid;

use crate::store::DestinationRow;

/// The outbox of this schema.
pub const OUTBOX: &str = "flights.outbox";
/// A destination was created.
pub const DESTINATION_CREATED: &str = "destination.created";

/// The outbox row announcing `row`, published to `exchange`.
#[must_use]
pub fn destination_created(row: &DestinationRow, exchange: &str) -> NewEvent {
    let event_id = Uuid::now_v7();
    let occurred_at = Utc::now();
    let event = DestinationEvent {
        event_id: event_id.to_string(),
        event_type: DESTINATION_CREATED.to_owned(),
        occurred_at: Some(timestamp(occurred_at)),
        destination_id: row.id,
        destination_name: row.name.clone(),
        tax_amount: money(row.tax_amount),
        is_promotion: row.is_promotion,
        allows_pets: row.allows_pets,
    };
    NewEvent {
        event_id,
        event_type: DESTINATION_CREATED.to_owned(),
        aggregate_id: row.id,
        exchange: exchange.to_owned(),
        routing_key: DESTINATION_CREATED.to_owned(),
        payload: event.encode_to_vec(),
        payload_json: serde_json::json!({
            "event_id": event_id.to_string(),
            "event_type": DESTINATION_CREATED,
            "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "destination_id": row.id,
            "destination_name": row.name,
            "tax_amount": format!("{:.2}", row.tax_amount),
            "is_promotion": row.is_promotion,
            "allows_pets": row.allows_pets,
        }),
        // The RPC span that created the destination, when tracing is on.
        traceparent: flightmesh_runtime::trace::current_traceparent(),
    }
}
