//! The broker's own limits on this machine, to quote flightmesh's event figures against: how fast
//! RabbitMQ takes persistent messages with publisher confirms (one at a time, and pipelined in
//! batches as the outbox relay does), and how fast one consumer takes them back with manual acks.
//! Messages are the size of a booking event and go through a durable topic exchange to a durable
//! queue, as the real ones do.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BrokerBench {
    /// `amqp://…`.
    pub url: String,
    /// Messages per phase.
    pub messages: usize,
    /// Payload size in bytes (a booking event is about 300).
    pub size: usize,
    /// Publishes in flight before waiting for their confirms (the relay's batch).
    pub batch: usize,
    /// Consumer prefetch.
    pub prefetch: u16,
}

/// Messages per second of each phase.
#[derive(Debug, Clone, Copy)]
pub struct BrokerRates {
    /// Publish, then wait for that confirm, then the next.
    pub confirm_each: f64,
    /// `batch` publishes, then their confirms together.
    pub confirm_batched: f64,
    /// One consumer, manual ack per message.
    pub consume_ack: f64,
}

impl BrokerRates {
    /// One JSON object (for scripts).
    #[must_use]
    pub fn json(&self) -> String {
        serde_json::json!({
            "publish_confirm_each_per_s": self.confirm_each.round(),
            "publish_confirm_batched_per_s": self.confirm_batched.round(),
            "consume_ack_per_s": self.consume_ack.round(),
        })
        .to_string()
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the three phases on a fresh exchange and queue, deleted afterwards.
///
/// # Errors
/// If the broker is unreachable or refuses a step, or a publish is not confirmed.
pub async fn run(bench: &BrokerBench) -> Result<BrokerRates, Error> {
    let connection = Connection::connect(&bench.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let suffix = std::process::id();
    let exchange = format!("loadgen.broker.{suffix}");
    let queue = format!("loadgen.broker.{suffix}.q");
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let queue_options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.as_str().into(), queue_options, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "booking.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let payload = vec![b'x'; bench.size];
    let publish = async |n: usize| {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(format!("m{n}")))
            .with_type(ShortString::from("booking.created"));
        channel
            .basic_publish(
                exchange.as_str().into(),
                "booking.created".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &payload,
                properties,
            )
            .await
    };
    let confirmed = |confirmation: Confirmation| match confirmation {
        Confirmation::Ack(None) => Ok(()),
        other => Err(format!("not confirmed: {other:?}")),
    };

    let started = Instant::now();
    for n in 0..bench.messages {
        confirmed(publish(n).await?.await?)?;
    }
    let confirm_each = rate(bench.messages, started.elapsed());

    let started = Instant::now();
    let mut n = 0;
    while n < bench.messages {
        let mut pending = Vec::with_capacity(bench.batch);
        for _ in 0..bench.batch.min(bench.messages - n) {
            pending.push(publish(n).await?);
            n += 1;
        }
        for confirmation in futures::future::join_all(pending).await {
            confirmed(confirmation?)?;
        }
    }
    let confirm_batched = rate(bench.messages, started.elapsed());

    // Both phases' messages are in the queue: consume them all.
    let consumer_channel = connection.create_channel().await?;
    consumer_channel
        .basic_qos(bench.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "loadgen".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let total = bench.messages * 2;
    let started = Instant::now();
    for _ in 0..total {
        let delivery = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
            .await
            .map_err(|_| "no delivery within 30 s")?
            .ok_or("the consumer was cancelled")??;
        delivery.ack(BasicAckOptions::default()).await?;
    }
    let consume_ack = rate(total, started.elapsed());

    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    connection.close(200, "done".into()).await?;
    Ok(BrokerRates {
        confirm_each,
        confirm_batched,
        consume_ack,
    })
}

#[allow(clippy::cast_precision_loss)]
fn rate(messages: usize, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64().max(1e-9)
}
