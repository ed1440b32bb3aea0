//! What one delivery says: its event type (and the bounded metric label of it), how many times it
//! was retried, its trace parent, and the plan its body decodes to (or why it never will); and
//! what became of it (the `outcome` and `reason` labels of the consumer's metrics).

use flightmesh_events::amqp;
use flightmesh_proto::bookings::BookingEvent;
use flightmesh_proto::flights::DestinationEvent;
use flightmesh_runtime::trace;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, ShortString};
use prost::Message as _;

use crate::apply::{self, BOOKING_CANCELLED, BOOKING_CREATED, DESTINATION_CREATED, Plan, Poison};
use crate::consumer::RETRIES_HEADER;

/// A `consume` span per message, the child of the span that wrote the event (its `traceparent`
/// header), so a booking's trace reaches the Redis write it causes.
pub(crate) fn consume_span(delivery: &Delivery) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.message.id = %message_id(delivery).unwrap_or_default(),
        messaging.rabbitmq.routing_key = %delivery.routing_key,
        redelivered = delivery.redelivered,
    );
    let traceparent = amqp::header_text(&delivery.properties, trace::TRACEPARENT);
    trace::set_parent_from(&span, traceparent.as_deref());
    span
}

/// The message id (the event's id), if the publisher set one.
pub(crate) fn message_id(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(ToString::to_string)
}

/// The metric label of an event type: itself when known, else `unknown` (labels must come from
/// a fixed set, not from whoever publishes).
pub(crate) fn type_label(event_type: &str) -> &'static str {
    apply::EVENT_TYPES
        .into_iter()
        .find(|known| *known == event_type)
        .unwrap_or("unknown")
}

/// The event type: the AMQP `type` property, else the routing key.
pub(crate) fn event_type(delivery: &Delivery) -> String {
    delivery
        .properties
        .kind()
        .as_ref()
        .map(ToString::to_string)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| delivery.routing_key.to_string())
}

/// Retries so far, from the header this consumer sets.
pub(crate) fn retries(properties: &BasicProperties) -> u32 {
    let value = properties.headers().as_ref().and_then(|headers| {
        headers
            .inner()
            .get(&ShortString::from(RETRIES_HEADER))
            .cloned()
    });
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::ShortInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// The plan of a message body, or why it can never be applied.
pub(crate) fn decode(event_type: &str, body: &[u8]) -> Result<Plan, Poison> {
    match event_type {
        BOOKING_CREATED | BOOKING_CANCELLED => {
            let event = BookingEvent::decode(body)
                .map_err(|err| Poison(format!("undecodable BookingEvent: {err}")))?;
            apply::booking_plan(&event, true)
        }
        DESTINATION_CREATED => {
            let event = DestinationEvent::decode(body)
                .map_err(|err| Poison(format!("undecodable DestinationEvent: {err}")))?;
            apply::destination_plan(&event)
        }
        other => Err(Poison(format!("unknown event type {other:?}"))),
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Duplicate,
    Retried,
    DeadLettered,
}

impl Outcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Why an event was dead-lettered (logged with it; poison is also counted on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// It can never be applied: unreadable, unknown type, or values no booking can have.
    Poison,
    /// Applying it kept failing.
    RetriesExhausted,
}

impl Reason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Poison => "poison",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_come_from_the_known_event_types_only() {
        for known in apply::EVENT_TYPES {
            assert_eq!(type_label(known), known);
        }
        for forged in ["booking.exploded", "", "BOOKING.CREATED", &"x".repeat(255)] {
            assert_eq!(type_label(forged), "unknown");
        }
    }
}
