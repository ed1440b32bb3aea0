//! The broker's own limits on this machine, to quote flightmesh's event figures against: how fast
//! RabbitMQ takes persistent messages with publisher confirms (one at a time, and pipelined in
//! batches as the outbox relay does), and how fast one consumer takes them back with manual acks
//! (one per delivery, or one `multiple` ack per batch as the stats worker does).
//! Messages are the size of a booking event and go through a durable topic exchange to a durable
//! queue, as the real ones do.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Channel, Confirmation, Consumer, PublisherConfirm};

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
    /// Deliveries per ack: one `multiple` ack for each batch (1: an ack per delivery).
    pub ack_batch: usize,
    /// Only the pipeline's pattern: no one-at-a-time phase, so that what RabbitMQ spends over
    /// the run is its cost per event as the relay and the worker use it.
    pub pipelined_only: bool,
}

/// Messages per second of each phase.
#[derive(Debug, Clone, Copy)]
pub struct BrokerRates {
    /// Publish, then wait for that confirm, then the next (not run when pipelined only).
    pub confirm_each: Option<f64>,
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
            "publish_confirm_each_per_s": self.confirm_each.map(f64::round),
            "publish_confirm_batched_per_s": self.confirm_batched.round(),
            "consume_ack_per_s": self.consume_ack.round(),
        })
        .to_string()
    }
}

type Error = flightmesh_runtime::BoxError;

/// Runs the three phases on a fresh exchange and queue, deleted afterwards.
///
/// # Errors
/// If the ack batch exceeds the prefetch, the broker is unreachable or refuses a step, or a
/// publish is not confirmed.
pub async fn run(bench: &BrokerBench) -> Result<BrokerRates, Error> {
    // The consumer stops receiving at `prefetch` unacked deliveries: a larger ack batch would
    // wait forever for its last delivery.
    if bench.ack_batch > usize::from(bench.prefetch) {
        return Err(format!(
            "an ack batch of {} cannot exceed the prefetch of {}",
            bench.ack_batch, bench.prefetch
        )
        .into());
    }
    let connection = Connection::connect(&bench.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let suffix = std::process::id();
    let exchange = format!("loadgen.broker.{suffix}");
    let queue = format!("loadgen.broker.{suffix}.q");
    declare_topology(&channel, &exchange, &queue).await?;

    let payload = vec![b'x'; bench.size];
    let confirm_each = if bench.pipelined_only {
        None
    } else {
        Some(confirm_each_rate(&channel, &exchange, &payload, bench.messages).await?)
    };
    let confirm_batched = confirm_batched_rate(&channel, &exchange, &payload, bench).await?;
    // The publish phases' messages are in the queue: consume them all. The consumer and its
    // channel stay open through the cleanup below, until the run returns.
    let published = bench.messages * if bench.pipelined_only { 1 } else { 2 };
    let (_consumer_channel, mut deliveries) = start_consumer(&connection, &queue, bench).await?;
    let consume_ack = consume_ack_rate(&mut deliveries, published, bench.ack_batch).await?;

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

/// Declares the durable topic exchange and durable queue, bound on `booking.created`.
async fn declare_topology(channel: &Channel, exchange: &str, queue: &str) -> Result<(), Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
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
        .queue_declare(queue.into(), queue_options, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            "booking.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Publishes message `n` as a persistent, mandatory `booking.created`; returns its pending confirm.
async fn publish(
    channel: &Channel,
    exchange: &str,
    payload: &[u8],
    n: usize,
) -> lapin::Result<PublisherConfirm> {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(format!("m{n}")))
        .with_type(ShortString::from("booking.created"));
    channel
        .basic_publish(
            exchange.into(),
            "booking.created".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            payload,
            properties,
        )
        .await
}

/// Accepts only a plain ack; anything else (nack, returned message) is an error.
fn confirmed(confirmation: Confirmation) -> Result<(), String> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        other => Err(format!("not confirmed: {other:?}")),
    }
}

/// Phase one: publishes `messages`, each waiting for its confirm; messages per second.
async fn confirm_each_rate(
    channel: &Channel,
    exchange: &str,
    payload: &[u8],
    messages: usize,
) -> Result<f64, Error> {
    let started = Instant::now();
    for n in 0..messages {
        confirmed(publish(channel, exchange, payload, n).await?.await?)?;
    }
    Ok(rate(messages, started.elapsed()))
}

/// Phase two: publishes `bench.messages` in batches of `bench.batch`, then awaits each batch's
/// confirms together; messages per second.
async fn confirm_batched_rate(
    channel: &Channel,
    exchange: &str,
    payload: &[u8],
    bench: &BrokerBench,
) -> Result<f64, Error> {
    let started = Instant::now();
    let mut n = 0;
    while n < bench.messages {
        let mut pending = Vec::with_capacity(bench.batch);
        for _ in 0..bench.batch.min(bench.messages - n) {
            pending.push(publish(channel, exchange, payload, n).await?);
            n += 1;
        }
        for confirmation in futures::future::join_all(pending).await {
            confirmed(confirmation?)?;
        }
    }
    Ok(rate(bench.messages, started.elapsed()))
}

/// Opens a channel with `bench.prefetch` and starts the consumer on `queue`.
async fn start_consumer(
    connection: &Connection,
    queue: &str,
    bench: &BrokerBench,
) -> Result<(Channel, Consumer), Error> {
    let consumer_channel = connection.create_channel().await?;
    consumer_channel
        .basic_qos(bench.prefetch, BasicQosOptions::default())
        .await?;
    let deliveries = consumer_channel
        .basic_consume(
            queue.into(),
            "loadgen".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((consumer_channel, deliveries))
}

/// Phase three: takes `total` messages back from `deliveries`, acking every `ack_batch`-th with
/// `multiple` (each, when 1; the last one always); messages per second.
async fn consume_ack_rate(
    deliveries: &mut Consumer,
    total: usize,
    ack_batch: usize,
) -> Result<f64, Error> {
    let started = Instant::now();
    for n in 1..=total {
        let delivery = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
            .await
            .map_err(|_| "no delivery within 30 s")?
            .ok_or("the consumer was cancelled")??;
        if n % ack_batch.max(1) == 0 || n == total {
            delivery
                .ack(BasicAckOptions {
                    multiple: ack_batch > 1,
                })
                .await?;
        }
    }
    Ok(rate(total, started.elapsed()))
}

#[allow(clippy::cast_precision_loss)]
fn rate(messages: usize, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64().max(1e-9)
}
