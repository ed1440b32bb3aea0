//! RabbitMQ connections and the properties every flightmesh event carries.

use flightmesh_runtime::config::{Secret, Shared, Var};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

/// `AMQP_URL`.
pub const AMQP_URL: Var = Var::new("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    .doc("RabbitMQ URL (vhost at the end, `%2f` is `/`)")
    .secret();

/// `BOOKINGS_EXCHANGE`: bookings publishes, the stats worker consumes.
pub const BOOKINGS_EXCHANGE: Shared = Shared::new("BOOKINGS_EXCHANGE", "flightmesh.bookings");
/// `CATALOG_EXCHANGE`: flights publishes; the stats worker and every flights replica (its cache)
/// consume.
pub const CATALOG_EXCHANGE: Shared = Shared::new("CATALOG_EXCHANGE", "flightmesh.catalog");

/// Content type of event bodies: a protobuf message (`BookingEvent`, `DestinationEvent`).
pub const CONTENT_TYPE: &str = "application/protobuf";
/// AMQP header carrying the W3C trace context of the change that caused the event.
pub const TRACEPARENT: &str = "traceparent";

/// The largest AMQP frame a connection asks for (the URL's `frame_max` wins). lapin keeps 32
/// frames of buffer each way per connection, resident: at RabbitMQ's default 128 KiB that is
/// 8 MiB per connection, a third of an idle service. Events are a few hundred bytes, and a
/// larger body is only split into more frames.
pub const FRAME_MAX: u32 = 16 * 1024;

/// Opens a connection named after its user, so operators can tell connections apart.
pub async fn connect(url: &Secret<String>, name: &str) -> Result<Connection, lapin::Error> {
    let mut uri: AMQPUri = url
        .expose()
        .parse()
        .map_err(|err: String| lapin::Error::from(std::io::Error::other(err)))?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Connection::connect_uri(
        uri,
        ConnectionProperties::default().with_connection_name(LongString::from(name)),
    )
    .await
}

/// Declares an event exchange: topic, durable. Publishers and consumers all declare it, and
/// RabbitMQ refuses a second declaration with other properties, so they declare it here.
pub async fn declare_event_exchange(channel: &Channel, name: &str) -> Result<(), lapin::Error> {
    declare_durable_exchange(channel, name, ExchangeKind::Topic).await
}

/// Declares a durable exchange of `kind` (no other options, no arguments): an event exchange,
/// or a consumer's own one such as a dead-letter exchange.
pub async fn declare_durable_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            ShortString::from(name),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares a queue of this connection's own, named by the server and gone with the connection
/// (exclusive, auto-delete), bound to `exchange` by `routing_key`; returns its name. For
/// listeners that need every replica to hear an event (a cache drop), not one of them.
pub async fn declare_private_queue(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
) -> Result<ShortString, lapin::Error> {
    let queue = channel
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            ShortString::from(exchange),
            ShortString::from(routing_key),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(queue.name().clone())
}

/// The queue `name` as the broker holds it now (its message and consumer counts), without
/// declaring it: a passive declare. A missing queue is an error that also closes `channel`, so
/// a caller that may ask about a missing queue gives the question a channel of its own.
pub async fn inspect_queue(channel: &Channel, name: &str) -> Result<lapin::Queue, lapin::Error> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(ShortString::from(name), passive, FieldTable::default())
        .await
}

/// Properties of an event message: persistent, typed, identified by its event id, with the
/// trace context as a header.
#[must_use]
pub fn event_properties(
    event_id: &str,
    event_type: &str,
    timestamp: u64,
    traceparent: Option<&str>,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(traceparent) = traceparent {
        headers.insert(
            ShortString::from(TRACEPARENT),
            AMQPValue::LongString(LongString::from(traceparent)),
        );
    }
    BasicProperties::default()
        .with_message_id(ShortString::from(event_id))
        .with_type(ShortString::from(event_type))
        .with_content_type(ShortString::from(CONTENT_TYPE))
        .with_delivery_mode(2)
        .with_timestamp(timestamp)
        .with_headers(headers)
}

/// A header's text value, if the message has it.
#[must_use]
pub fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(&ShortString::from(name))? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}
