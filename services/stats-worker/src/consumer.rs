//! The event consumer: RabbitMQ → [`crate::apply`] → ack.
//!
//! Topology (declared idempotently at every (re)connection):
//! - `<queue>`: durable (quorum if configured), bound to `booking.created` and
//!   `booking.cancelled` on the bookings exchange and `destination.created` on the catalog
//!   exchange; rejects go to `<queue>.dlx` → `<queue>.dead`, the dead-letter queue operators read;
//! - `<queue>.retry.<n>` (n = 1 … budget): a parking queue per attempt whose messages expire after
//!   `RETRY_BASE_DELAY × 2^(n-1)` back into `<queue>` — a delayed retry that does not hold up the
//!   events behind it.
//!
//! Per message: decode → apply (atomic, at most once) → ack, only after Redis has the update; up
//! to `prefetch` messages are handled concurrently, and their acks go out in batches
//! ([`crate::ack_window`]). An
//! event that cannot be decoded is dead-lettered at once; one that fails to apply (Redis down, a
//! key of the wrong type) is parked for a retry with the attempt counted in a header (independent
//! of the broker's own redelivery counting), and dead-lettered once the budget is spent. A lost
//! connection (broker restart) is re-established with backoff; unacked messages come back
//! redelivered and are harmless, because applying is idempotent.
//!
//! An event that cannot be represented (a forged or corrupted one: see [`crate::apply`]) is
//! poison and dead-lettered at once. The AMQP `type` property is a metric label only when it
//! is one of [`apply::EVENT_TYPES`]; anything else counts as `unknown`, so a publisher cannot
//! grow the metric's series. The consumer gives up — and the process, under supervision, stops
//! and is restarted — only when the broker refuses its topology (a queue declared with other
//! arguments, permissions): retrying that in a loop would leave a ready pod consuming nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use flightmesh_events::amqp;
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::backoff::Backoff;
use flightmesh_runtime::metrics::Metric;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tracing::Instrument;

use crate::ack_window::{AckWindow, Settled};
use crate::apply::{self, Plan};
use crate::delivery::{
    Outcome, Reason, consume_span, decode, event_type, message_id, retries, type_label,
};
use crate::keys::{self, Keys};
use crate::redis_store::Redis;

/// How long a stopping consumer waits for the events it is handling to be applied and acked.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Header counting how many times an event was parked for a retry.
pub const RETRIES_HEADER: &str = "x-flightmesh-retries";

pub use crate::topology::{ConsumerConfig, declare_topology};

/// Why the consumer stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The broker refused to declare the consumer's exchanges or queues the way it is
    /// configured; retrying cannot fix that.
    #[error("the broker refused the consumer's topology")]
    Topology(#[source] lapin::Error),
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Connection(#[from] lapin::Error),
    #[error(transparent)]
    Fatal(#[from] ConsumerError),
}

/// Consumes events until shut down.
pub struct Consumer {
    config: ConsumerConfig,
    redis: Arc<Redis>,
    keys: Keys,
}

/// An open session: the consuming channel and a confirm channel for parking retries.
struct Session {
    consume: Channel,
    publish: Channel,
}

impl Consumer {
    pub fn new(config: ConsumerConfig, redis: Arc<Redis>, keys: Keys) -> Self {
        Self {
            config,
            redis,
            keys,
        }
    }

    /// Consumes until `shutdown`, reconnecting after any connection loss. `Err` only when the
    /// broker refuses the topology (see the module docs).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            match self.session(&shutdown, &mut backoff).await {
                Ok(()) => return Ok(()),
                Err(SessionError::Fatal(err)) => return Err(err),
                Err(SessionError::Connection(err)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, ?delay, "event consumer lost its connection; reconnecting");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    /// One connection's worth of consuming; `Ok` only on shutdown.
    async fn session(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), SessionError> {
        let (connection, session, mut deliveries) = self.open().await?;
        tracing::info!(queue = %self.config.queue, prefetch = self.config.prefetch, "consuming events");
        backoff.reset();
        // Up to `prefetch` events are handled at once: their Lua scripts pipeline on the one
        // Redis connection instead of each waiting for the previous event's round trips. Safe
        // because every statistic is a sum and each fact is applied once whatever the order
        // (ADR 0006).
        let limit = usize::from(self.config.prefetch);
        let mut in_flight = FuturesUnordered::new();
        let mut acks = AckWindow::new(self.config.prefetch);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    finish(in_flight, acks, &session, &connection).await;
                    return Ok(());
                }
                Some(handled) = in_flight.next() => acks.handled(&session.consume, handled?).await?,
                () = acks.due() => acks.tick(&session.consume).await?,
                delivery = deliveries.next(), if in_flight.len() < limit => match delivery {
                    Some(Ok(delivery)) => {
                        acks.delivered(delivery.delivery_tag);
                        let span = consume_span(&delivery);
                        in_flight.push(self.handle(&session, delivery).instrument(span));
                    }
                    Some(Err(err)) => return Err(err.into()),
                    // The broker cancelled the consumer (its queue was deleted) or the channel
                    // closed: a new session declares the queue again.
                    None => {
                        tracing::warn!(queue = %self.config.queue, "the broker ended the consumer");
                        return Err(lapin::Error::from(
                            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
                        )
                        .into());
                    }
                },
            }
        }
    }

    /// Connects, declares the topology and starts consuming.
    async fn open(&self) -> Result<(Connection, Session, lapin::Consumer), SessionError> {
        let connection = amqp::connect(
            &self.config.amqp_url,
            &format!("{} consumer", self.config.queue),
        )
        .await?;
        let consume = connection.create_channel().await?;
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_topology(&consume, &self.config)
            .await
            .map_err(|err| {
                if refused(&err) {
                    SessionError::Fatal(ConsumerError::Topology(err))
                } else {
                    SessionError::Connection(err)
                }
            })?;
        consume
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let deliveries = consume
            .basic_consume(
                ShortString::from(self.config.queue.as_str()),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((connection, Session { consume, publish }, deliveries))
    }

    /// Decode → apply (then acked in a batch), or park for a retry, or dead-letter.
    async fn handle(&self, session: &Session, delivery: Delivery) -> Result<Settled, lapin::Error> {
        let started = Instant::now();
        let tag = delivery.delivery_tag;
        let event_type = event_type(&delivery);
        if delivery.redelivered {
            metrics::counter!("stats_redeliveries_total").increment(1);
        }
        let outcome = match decode(&event_type, &delivery.data) {
            Err(poison) => {
                self.dead_letter(&delivery, &event_type, &poison.0, Reason::Poison)
                    .await?
            }
            Ok(plan) => match self.apply(&plan).await {
                Ok(applied) => {
                    if let Some(at) = plan.occurred_at {
                        let lag = (Utc::now() - at).to_std().unwrap_or_default();
                        metrics::histogram!("stats_event_lag_seconds").record(lag.as_secs_f64());
                    }
                    if applied {
                        Outcome::Applied
                    } else {
                        Outcome::Duplicate
                    }
                }
                Err(err) => {
                    self.retry_or_dead_letter(session, &delivery, &event_type, &err.to_string())
                        .await?
                }
            },
        };
        metrics::counter!("stats_events_total", "event_type" => type_label(&event_type), "outcome" => outcome.label()).increment(1);
        metrics::histogram!("stats_event_processing_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(match outcome {
            Outcome::Applied | Outcome::Duplicate => Settled::Applied(tag),
            Outcome::Retried | Outcome::DeadLettered => Settled::Alone(tag),
        })
    }

    async fn apply(&self, plan: &Plan) -> Result<bool, crate::redis_store::RedisError> {
        let mut conn = self.redis.conn().await?;
        Ok(apply::apply(&mut conn, &self.keys, plan, self.config.log_cap).await?)
    }

    /// Parks the message for its next attempt, or dead-letters it once the budget is spent.
    async fn retry_or_dead_letter(
        &self,
        session: &Session,
        delivery: &Delivery,
        event_type: &str,
        error: &str,
    ) -> Result<Outcome, lapin::Error> {
        let attempt = retries(&delivery.properties) + 1;
        if attempt > self.config.retry_budget {
            return self
                .dead_letter(
                    delivery,
                    event_type,
                    &format!("{error} (after {} retries)", attempt - 1),
                    Reason::RetriesExhausted,
                )
                .await;
        }
        tracing::warn!(
            event_type,
            attempt,
            error,
            "event failed to apply; parked for a retry"
        );
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from(RETRIES_HEADER),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        let parked = session
            .publish
            .basic_publish(
                ShortString::from(""),
                ShortString::from(self.config.retry_queue(attempt).as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if matches!(parked, Confirmation::Ack(None)) {
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(Outcome::Retried)
        } else {
            // Could not park it: leave it to the broker to deliver again.
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await?;
            Ok(Outcome::Retried)
        }
    }

    /// Records the dead letter where operators look (`logs:dead_letter`, best effort) and
    /// rejects the message into the dead-letter queue.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        event_type: &str,
        error: &str,
        reason: Reason,
    ) -> Result<Outcome, lapin::Error> {
        let entry = serde_json::json!({
            "task": event_type,
            "args": {
                "message_id": message_id(delivery),
                "routing_key": delivery.routing_key.to_string(),
                "retries": retries(&delivery.properties),
                "bytes": delivery.data.len(),
            },
            "error": error,
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let recorded = async {
            let mut conn = self.redis.conn().await?;
            redis::pipe()
                .atomic()
                .lpush(self.keys.key(keys::DEAD_LETTERS), entry.to_string())
                .ignore()
                .ltrim(
                    self.keys.key(keys::DEAD_LETTERS),
                    0,
                    isize::try_from(self.config.log_cap.max(1)).unwrap_or(isize::MAX) - 1,
                )
                .ignore()
                .cmd("INCRBYFLOAT")
                .arg(self.keys.key(keys::DEAD_LETTER_COUNT))
                .arg(1)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(crate::redis_store::RedisError::from)
        }
        .await;
        if let Err(err) = recorded {
            tracing::error!(error = %err, "could not record a dead letter in Redis; it is in the dead-letter queue");
        }
        tracing::error!(
            event_type,
            error,
            reason = reason.label(),
            "event dead-lettered"
        );
        metrics::counter!("stats_dead_letters_total").increment(1);
        if reason == Reason::Poison {
            metrics::counter!("stats_poison_events_total").increment(1);
        }
        delivery
            .reject(BasicRejectOptions { requeue: false })
            .await?;
        Ok(Outcome::DeadLettered)
    }
}

/// On shutdown: finishes the events in hand so their acks go out (bounded: a stuck Redis must
/// not hold up shutdown), then closes; unacked messages go back to the queue when the channel
/// closes, and coming back twice is harmless.
async fn finish<F>(
    mut in_flight: FuturesUnordered<F>,
    mut acks: AckWindow,
    session: &Session,
    connection: &Connection,
) where
    F: Future<Output = Result<Settled, lapin::Error>>,
{
    let _ = tokio::time::timeout(SHUTDOWN_DRAIN, async {
        while let Some(handled) = in_flight.next().await {
            // One that failed (its channel is closing) leaves its event to be delivered again.
            if let Ok(settled) = handled {
                acks.record(settled);
            }
        }
    })
    .await;
    drop(in_flight);
    let _ = acks.send(&session.consume).await;
    let _ = session
        .consume
        .close(200, ShortString::from("shutting down"))
        .await;
    let _ = connection
        .close(200, ShortString::from("shutting down"))
        .await;
}

/// The consumer's metrics.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "stats_events_total",
        "Events handled, by event type and outcome (applied, duplicate, retried, dead_lettered)",
    )
    .labelled(),
    Metric::histogram(
        "stats_event_processing_seconds",
        "Time to handle one event, decode to applied (or parked, or dead-lettered)",
    ),
    Metric::histogram(
        "stats_event_lag_seconds",
        "Time from the event's occurrence to its statistics in Redis",
    ),
    Metric::counter(
        "stats_redeliveries_total",
        "Messages the broker delivered again (applied at most once)",
    ),
    Metric::counter("stats_dead_letters_total", "Events dead-lettered"),
    Metric::counter(
        "stats_poison_events_total",
        "Events dead-lettered at once: unreadable, of an unknown type, or with values no booking can have",
    ),
];

/// Whether the broker refused a declaration for good: PRECONDITION_FAILED (the queue or
/// exchange exists with other arguments) or ACCESS_REFUSED (no permission).
fn refused(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(amqp) if matches!(amqp.get_id(), 403 | 406))
}
