//! Events between flightmesh services.
//!
//! A service that emits events writes them as rows of its own `<schema>.outbox` table in the same
//! transaction as the change they describe ([`outbox::insert`]); a [`relay::Relay`] in the same
//! process publishes pending rows to RabbitMQ with publisher confirms and marks them sent only
//! once the broker has confirmed them. A broker outage delays events, never loses them; a crash
//! between publish and mark republishes, so consumers apply events at most once by `event_id`.
//!
//! [`amqp`] holds what publishers and consumers share: connecting, and the message properties.

pub mod amqp;
pub mod outbox;
pub mod relay;

pub use outbox::{EventJson, EventStamp, NewEvent, OutboxRecord};
pub use relay::{PublisherConfig, Relay, RelayConfig, Tuning};
