//! A test consumer: a private queue bound to the test's exchange that collects every event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flightmesh::testing::AMQP_URL;
use flightmesh_runtime::config::Secret;
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub properties: BasicProperties,
    pub routing_key: String,
    pub data: Vec<u8>,
}

/// Messages received so far, by message id (duplicates counted).
#[derive(Clone, Default)]
pub struct Inbox {
    pub messages: Arc<Mutex<Vec<Received>>>,
}

impl Inbox {
    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// Message id → how many times it arrived.
    pub fn by_id(&self) -> HashMap<String, usize> {
        let mut ids = HashMap::new();
        for message in self.messages.lock().unwrap().iter() {
            let id = message
                .properties
                .message_id()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            *ids.entry(id).or_insert(0) += 1;
        }
        ids
    }
}

/// Starts consuming `exchange` (declared here if the relay has not yet) into an inbox. The
/// queue is exclusive: it disappears with the test.
pub async fn consume(exchange: &str) -> Inbox {
    let connection =
        flightmesh_events::amqp::connect(&Secret::new(AMQP_URL.to_owned()), "test consumer")
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    flightmesh_events::amqp::declare_event_exchange(&channel, exchange)
        .await
        .unwrap();
    let queue = flightmesh_events::amqp::declare_private_queue(&channel, exchange, "#")
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue,
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let inbox = Inbox::default();
    let messages = inbox.messages.clone();
    tokio::spawn(async move {
        let _keep = connection;
        while let Some(Ok(delivery)) = consumer.next().await {
            messages.lock().unwrap().push(Received {
                properties: delivery.properties.clone(),
                routing_key: delivery.routing_key.to_string(),
                data: delivery.data.clone(),
            });
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
    });
    inbox
}
