//! The stats worker's RabbitMQ topology: its configuration, the names it derives (dead-letter
//! and retry queues), and the declaration of exchanges, queues and bindings. The consumer
//! declares it at every (re)connection; tests and operators use the same names to clean up.

use std::time::Duration;

use crate::apply::{BOOKING_CANCELLED, BOOKING_CREATED, DESTINATION_CREATED};

use flightmesh_events::amqp;
use flightmesh_runtime::Secret;
use flightmesh_runtime::config::{Reader, Var};
use lapin::Channel;
use lapin::ExchangeKind;
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// What the consumer needs to know.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// RabbitMQ.
    pub amqp_url: Secret<String>,
    /// Booking events exchange.
    pub bookings_exchange: String,
    /// Catalog events exchange.
    pub catalog_exchange: String,
    /// The worker's queue.
    pub queue: String,
    /// Classic or quorum (replicated) queues.
    pub queue_type: QueueType,
    /// Unacknowledged events held at once.
    pub prefetch: u16,
    /// Retries before dead-lettering.
    pub retry_budget: u32,
    /// First retry delay; each next one doubles.
    pub retry_base_delay: Duration,
    /// Entries kept in `logs:dead_letter` and the other log lists.
    pub log_cap: u32,
}

flightmesh_runtime::word_enum! {
    /// `STATS_QUEUE_TYPE`.
    pub enum QueueType {
        /// One node's queue.
        Classic = "classic",
        /// Replicated over a RabbitMQ cluster.
        Quorum = "quorum",
    }
}

impl ConsumerConfig {
    /// Reads the consumer's variables (the stats worker's `Config::read` calls it in the order
    /// of its docs).
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            amqp_url: r.get(amqp::AMQP_URL),
            bookings_exchange: r
                .get(amqp::BOOKINGS_EXCHANGE.doc("Topic exchange of booking events")),
            catalog_exchange: r.get(amqp::CATALOG_EXCHANGE.doc("Topic exchange of catalog events")),
            queue: r.get(Var::new("STATS_QUEUE", "flightmesh.stats").doc(
                "The worker's queue; `<queue>.retry.<n>` and `<queue>.dead` are derived from it",
            )),
            queue_type: r.get(
                Var::new("STATS_QUEUE_TYPE", "classic")
                    .doc("`classic` or `quorum` (replicated: use it on a RabbitMQ cluster)"),
            ),
            prefetch: r.positive(
                Var::new("PREFETCH", "32")
                    .doc("Unacknowledged events a consumer holds, and handles, at once"),
            ),
            retry_budget: r.get(
                Var::new("RETRY_BUDGET", "5")
                    .doc("Retries of an event that fails to apply before it is dead-lettered"),
            ),
            retry_base_delay: r.duration(
                Var::new("RETRY_BASE_DELAY", "1s")
                    .doc("Delay before the first retry; each next retry waits twice as long"),
            ),
            log_cap: {
                let var = Var::new("LOG_LIST_CAP", "10000").doc(
                    "Entries kept (newest first) in `logs:notifications`, `logs:candy_distribution` and `logs:dead_letter`; the totals the API answers are counters, not list lengths",
                );
                let cap: u32 = r.get(var);
                r.ensure(
                    &var,
                    cap > 0,
                    "must be at least 1 (lists are never unbounded)",
                );
                cap
            },
        }
    }

    /// The dead-letter queue.
    #[must_use]
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// The dead-letter exchange.
    #[must_use]
    pub fn dead_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    /// The parking queue of retry `attempt` (1-based).
    #[must_use]
    pub fn retry_queue(&self, attempt: u32) -> String {
        format!("{}.retry.{attempt}", self.queue)
    }

    /// Every queue this consumer declares (for clean-up by tests and operators).
    #[must_use]
    pub fn queues(&self) -> Vec<String> {
        let mut queues = vec![self.queue.clone(), self.dead_queue()];
        queues.extend((1..=self.retry_budget).map(|n| self.retry_queue(n)));
        queues
    }
}

flightmesh_runtime::env_config!(ConsumerConfig);

/// Declares exchanges, the queue with its bindings, the retry queues and the dead-letter queue.
pub async fn declare_topology(
    channel: &Channel,
    config: &ConsumerConfig,
) -> Result<(), lapin::Error> {
    declare_exchanges(channel, config).await?;
    declare_dead_letters(channel, config).await?;
    declare_queue(channel, config).await?;
    declare_retry_queues(channel, config).await
}

const DURABLE_QUEUE: QueueDeclareOptions = QueueDeclareOptions {
    passive: false,
    durable: true,
    exclusive: false,
    auto_delete: false,
    nowait: false,
};

/// The arguments every queue of the worker starts with (its type).
fn queue_args(config: &ConsumerConfig) -> FieldTable {
    let mut args = FieldTable::default();
    if config.queue_type == QueueType::Quorum {
        args.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString(LongString::from("quorum")),
        );
    }
    args
}

/// The two event exchanges (as their publishers declare them) and the dead-letter exchange
/// (fanout, durable).
async fn declare_exchanges(channel: &Channel, config: &ConsumerConfig) -> Result<(), lapin::Error> {
    for exchange in [&config.bookings_exchange, &config.catalog_exchange] {
        amqp::declare_event_exchange(channel, exchange).await?;
    }
    amqp::declare_durable_exchange(channel, &config.dead_exchange(), ExchangeKind::Fanout).await
}

/// `<queue>.dead`, bound to the dead-letter exchange.
async fn declare_dead_letters(
    channel: &Channel,
    config: &ConsumerConfig,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            ShortString::from(config.dead_queue().as_str()),
            DURABLE_QUEUE,
            queue_args(config),
        )
        .await?;
    channel
        .queue_bind(
            ShortString::from(config.dead_queue().as_str()),
            ShortString::from(config.dead_exchange().as_str()),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// The worker's queue (rejected events go to the dead-letter exchange), bound to the events it
/// applies.
async fn declare_queue(channel: &Channel, config: &ConsumerConfig) -> Result<(), lapin::Error> {
    let mut args = queue_args(config);
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from(config.dead_exchange().as_str())),
    );
    channel
        .queue_declare(
            ShortString::from(config.queue.as_str()),
            DURABLE_QUEUE,
            args,
        )
        .await?;
    for (exchange, key) in [
        (&config.bookings_exchange, BOOKING_CREATED),
        (&config.bookings_exchange, BOOKING_CANCELLED),
        (&config.catalog_exchange, DESTINATION_CREATED),
    ] {
        channel
            .queue_bind(
                ShortString::from(config.queue.as_str()),
                ShortString::from(exchange.as_str()),
                ShortString::from(key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// `<queue>.retry.<n>`: parking queues whose TTL doubles; expired retries go back to the main
/// queue through the default exchange.
async fn declare_retry_queues(
    channel: &Channel,
    config: &ConsumerConfig,
) -> Result<(), lapin::Error> {
    for attempt in 1..=config.retry_budget {
        let delay = config.retry_base_delay * 2u32.saturating_pow(attempt - 1);
        let mut args = queue_args(config);
        args.insert(
            ShortString::from("x-message-ttl"),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from("")),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from(config.queue.as_str())),
        );
        channel
            .queue_declare(
                ShortString::from(config.retry_queue(attempt).as_str()),
                DURABLE_QUEUE,
                args,
            )
            .await?;
    }
    Ok(())
}
