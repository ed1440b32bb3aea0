//! The outbox relay: publishes pending outbox rows to RabbitMQ and marks them sent once the broker
//! confirms them.
//!
//! Each round:
//! 1. **claim** up to `batch_size` pending rows in one short statement
//!    (`FOR UPDATE SKIP LOCKED`, then a lease `claimed_until = now() + lease`), so several relays
//!    (replicas) share the work without waiting on each other and no transaction stays open while
//!    the broker is slow;
//! 2. **publish** them all (`mandatory`, persistent) on a confirm channel, then await the
//!    confirms together — pipelined, not one round trip per event;
//! 3. **mark** the acknowledged rows `published_at = now()`; rows that were nacked, returned
//!    (unroutable) or not confirmed are released for the next round.
//!
//! Rounds run back to back while batches come full; otherwise the relay waits to be woken (a
//! commit in this process) or for `idle_poll` (rows from other replicas), then lets events gather
//! for `batch_window` — a few milliseconds of lag for far fewer statements under load.
//!
//! When the broker is unreachable the relay reconnects with capped exponential backoff, forever.
//! A relay that dies after publishing and before marking leaves the lease to expire: the rows are
//! published again, and consumers drop the duplicates by event id.

use flightmesh_runtime::metrics::Metric;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bytea, Double, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use flightmesh_db::{DbError, PgPool};
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::backoff::Backoff;
use flightmesh_runtime::config::Secret;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};
use tokio::sync::Notify;

use crate::amqp;

/// How long an event may come back unroutable before it is logged as a warning: on a fresh system
/// the consumers declare their queues a few seconds after the first events are written (the
/// catalog's, on a first start), and the relay retries until they do; past this, a consumer is
/// missing and an operator should know (`outbox_oldest_pending_seconds` grows too).
pub const UNROUTABLE_GRACE: Duration = Duration::from_secs(60);

/// How a relay behaves.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Schema-qualified outbox table, e.g. `bookings.outbox`.
    pub table: String,
    /// RabbitMQ URL.
    pub amqp_url: Secret<String>,
    /// Topic exchanges to declare (idempotently) before publishing.
    pub exchanges: Vec<String>,
    /// Rows per round.
    pub batch_size: i64,
    /// How long a claimed row is reserved for this relay.
    pub lease: Duration,
    /// How often to look for rows when nobody wakes the relay.
    pub idle_poll: Duration,
    /// After a wake-up, how long to let events gather before claiming them: under load, rounds
    /// of many events instead of many rounds of one (two statements and a confirm wait each).
    pub batch_window: Duration,
    /// How long to wait for the broker's confirms of one batch.
    pub confirm_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// On shutdown, keep publishing what is pending for at most this long.
    pub flush_timeout: Duration,
    /// Name of the AMQP connection (shown by RabbitMQ).
    pub connection_name: String,
    /// Event types published without `mandatory`: notices that no consumer may be bound for
    /// (yet). The broker drops such an event when no queue takes it; every other type is
    /// `mandatory`, and an unroutable one is retried (its consumer has not declared its queue).
    pub best_effort_events: Vec<String>,
    /// Test hook (fault injection, never set in production): after a batch is confirmed by the
    /// broker and before its rows are marked, log "outbox batch published, not yet marked" and
    /// wait this long — the window in which a killed relay leaves published rows to be
    /// published again by another replica (tools/faults, scenario 1).
    pub pause_after_publish: Option<Duration>,
}

impl RelayConfig {
    /// Defaults for `table`, publishing to `exchanges`.
    #[must_use]
    pub fn new(table: &str, amqp_url: Secret<String>, exchanges: Vec<String>) -> Self {
        Self {
            table: table.to_owned(),
            amqp_url,
            exchanges,
            batch_size: 500,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(200),
            batch_window: Duration::from_millis(5),
            confirm_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
            connection_name: format!("{table} relay"),
            best_effort_events: Vec::new(),
            pause_after_publish: None,
        }
    }
}

/// A claimed outbox row, ready to publish.
#[derive(Debug, Clone, diesel::QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    exchange: String,
    #[diesel(sql_type = Text)]
    routing_key: String,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
    #[diesel(sql_type = Nullable<Text>)]
    traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// What became of a batch.
struct Published {
    /// Confirmed: to mark published.
    sent: Vec<i64>,
    /// Nacked, unconfirmed, or unroutable past the grace period: released, and the round failed.
    failed: Vec<i64>,
    /// Unroutable within the grace period (a consumer still declaring its queue): released for
    /// the next round, which is no failure.
    deferred: Vec<i64>,
    /// The broker error that stopped publishing, if any.
    broker_error: Option<lapin::Error>,
}

/// Why a relay round did not publish everything.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("{0} of the batch were not confirmed")]
    Unconfirmed(usize),
}

/// Publishes a service's outbox. Cheap to clone the [`waker`](Relay::waker) into request
/// handlers: notifying it after a commit publishes the new event without waiting for a poll.
pub struct Relay {
    pool: PgPool,
    config: RelayConfig,
    wake: Arc<Notify>,
}

/// An open confirm channel and its connection.
struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl Relay {
    /// A relay over `pool` (the emitting service's pool).
    #[must_use]
    pub fn new(pool: PgPool, config: RelayConfig) -> Self {
        Self {
            pool,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notify it after committing an event to publish it at once.
    #[must_use]
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until `shutdown`, then publishes what is pending for at most `flush_timeout`.
    /// Run it as a supervised task (`Host::spawn`): it returns only after `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        flightmesh_runtime::metrics::declare(METRICS);
        // The table's failure counter exists from the start, at zero, for alerts on its rate.
        metrics::counter!("outbox_publish_failures_total", "table" => self.config.table.clone())
            .increment(0);
        // The backlog gauges run inside the relay's task, not in a detached one: if either
        // panics, the relay's supervisor sees it.
        let gauges = report_backlog(
            self.pool.clone(),
            self.config.table.clone(),
            shutdown.clone(),
        );
        tokio::join!(self.publish_until(&shutdown), gauges);
    }

    /// The publishing loop of [`Relay::run`], then the flush.
    async fn publish_until(&self, shutdown: &CancellationToken) {
        let table = self.config.table.clone();
        let mut publisher: Option<Publisher> = None;
        let mut backoff = Backoff::new(Duration::from_millis(100), self.config.max_backoff);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.round(&mut publisher).await {
                // A full batch: more are probably waiting.
                Ok(n) if i64::try_from(n).unwrap_or(i64::MAX) >= self.config.batch_size => {
                    backoff.reset();
                }
                Ok(_) => {
                    backoff.reset();
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(self.config.idle_poll) => {}
                        () = shutdown.cancelled() => {}
                    }
                    if !shutdown.is_cancelled() {
                        tokio::time::sleep(self.config.batch_window).await;
                    }
                }
                Err(err) => {
                    if matches!(err, RoundError::Broker(_)) {
                        publisher = None; // reconnect next round
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(table = %table, error = %flightmesh_runtime::telemetry::error_chain(&err), ?delay, "outbox relay round failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        }
        // Flush: whatever is pending now gets one last bounded chance.
        let flushed = tokio::time::timeout(self.config.flush_timeout, async {
            loop {
                match self.round(&mut publisher).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(table = %table, "outbox flush timed out; pending events stay for the next relay");
        }
        if let Some(publisher) = publisher {
            let _ = publisher
                .channel
                .close(200, ShortString::from("relay stopping"))
                .await;
            let _ = publisher
                .connection
                .close(200, ShortString::from("relay stopping"))
                .await;
        }
    }

    /// One claim → publish → mark round; returns how many rows were published.
    async fn round(&self, publisher: &mut Option<Publisher>) -> Result<usize, RoundError> {
        if publisher
            .as_ref()
            .is_none_or(|p| !p.channel.status().connected())
        {
            *publisher = Some(self.connect().await?);
        }
        let rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let channel = &publisher.as_ref().expect("connected above").channel;
        let Published {
            sent,
            failed,
            deferred,
            broker_error,
        } = self.publish(channel, &rows).await;
        if let Some(pause) = self.config.pause_after_publish
            && !sent.is_empty()
        {
            tracing::info!(table = %self.config.table, published = sent.len(), ?pause, "outbox batch published, not yet marked");
            tokio::time::sleep(pause).await;
        }
        let released: Vec<i64> = failed.iter().chain(&deferred).copied().collect();
        self.settle(&sent, &released).await?;
        metrics::counter!("outbox_published_total", "table" => self.config.table.clone())
            .increment(sent.len() as u64);
        if !failed.is_empty() {
            metrics::counter!("outbox_publish_failures_total", "table" => self.config.table.clone())
                .increment(failed.len() as u64);
        }
        match broker_error {
            Some(err) => Err(err.into()),
            None if failed.is_empty() => Ok(sent.len()),
            None => Err(RoundError::Unconfirmed(failed.len())),
        }
    }

    async fn connect(&self) -> Result<Publisher, lapin::Error> {
        let connection = amqp::connect(&self.config.amqp_url, &self.config.connection_name).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        for exchange in &self.config.exchanges {
            channel
                .exchange_declare(
                    ShortString::from(exchange.as_str()),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
        }
        tracing::info!(table = %self.config.table, "outbox relay connected to RabbitMQ");
        Ok(Publisher {
            connection,
            channel,
        })
    }

    /// Reserves up to `batch_size` unclaimed pending rows, oldest first.
    async fn claim(&self) -> Result<Vec<PendingRow>, DbError> {
        let table = &self.config.table;
        let mut conn = self.pool.get().await?;
        Ok(flightmesh_db::prepared(format!(
            "UPDATE {table} SET claimed_until = now() + $2, attempts = attempts + 1 \
             WHERE id IN ( \
                 SELECT id FROM {table} \
                 WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now()) \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, event_id, event_type, exchange, routing_key, payload, traceparent, created_at"
        ))
        .bind::<BigInt, _>(self.config.batch_size)
        .bind::<Interval, _>(pg_interval(self.config.lease))
        .load::<PendingRow>(&mut conn)
        .await
        .map(|mut rows| {
            rows.sort_by_key(|r| r.id);
            rows
        })?)
    }

    /// Publishes every row, then awaits the confirms.
    async fn publish(&self, channel: &Channel, rows: &[PendingRow]) -> Published {
        let mut pending = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut deferred = Vec::new();
        let mut broker_error = None;
        for row in rows {
            if broker_error.is_some() {
                failed.push(row.id);
                continue;
            }
            let properties = amqp::event_properties(
                &row.event_id.to_string(),
                &row.event_type,
                u64::try_from(row.created_at.timestamp()).unwrap_or(0),
                row.traceparent.as_deref(),
            );
            let published = channel
                .basic_publish(
                    ShortString::from(row.exchange.as_str()),
                    ShortString::from(row.routing_key.as_str()),
                    BasicPublishOptions {
                        mandatory: !self.config.best_effort_events.contains(&row.event_type),
                        ..BasicPublishOptions::default()
                    },
                    &row.payload,
                    properties,
                )
                .await;
            match published {
                Ok(confirm) => pending.push((row.id, row.created_at, confirm)),
                Err(err) => {
                    failed.push(row.id);
                    broker_error = Some(err);
                }
            }
        }
        let mut sent = Vec::with_capacity(pending.len());
        let confirms = futures::future::join_all(pending.into_iter().map(
            |(id, created_at, confirm)| async move {
                (
                    id,
                    created_at,
                    tokio::time::timeout(self.config.confirm_timeout, confirm).await,
                )
            },
        ))
        .await;
        for (id, created_at, outcome) in confirms {
            match outcome {
                // Acked and not returned: the broker routed and stored it.
                Ok(Ok(Confirmation::Ack(None))) => sent.push(id),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                    // On a fresh system the consumers declare their queues after the first
                    // events are written: that is not a fault until it lasts.
                    let age = (Utc::now() - created_at).to_std().unwrap_or_default();
                    if age < UNROUTABLE_GRACE {
                        tracing::info!(id, reply = %returned.reply_text, "event unroutable: its consumer has not declared its queue yet; will retry");
                        deferred.push(id);
                    } else {
                        tracing::warn!(id, reply = %returned.reply_text, age_seconds = age.as_secs(), "event returned unroutable; will retry");
                        failed.push(id);
                    }
                }
                Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => failed.push(id),
                Ok(Err(err)) => {
                    failed.push(id);
                    broker_error.get_or_insert(err);
                }
                Err(_) => failed.push(id),
            }
        }
        Published {
            sent,
            failed,
            deferred,
            broker_error,
        }
    }

    /// Marks confirmed rows published and releases the others for another attempt.
    async fn settle(&self, sent: &[i64], failed: &[i64]) -> Result<(), DbError> {
        let table = &self.config.table;
        let mut conn = self.pool.get().await?;
        if !sent.is_empty() {
            flightmesh_db::prepared(format!(
                "UPDATE {table} SET published_at = now(), claimed_until = NULL WHERE id = ANY($1)"
            ))
            .bind::<Array<BigInt>, _>(sent)
            .execute(&mut conn)
            .await?;
        }
        if !failed.is_empty() {
            flightmesh_db::prepared(format!(
                "UPDATE {table} SET claimed_until = NULL WHERE id = ANY($1)"
            ))
            .bind::<Array<BigInt>, _>(failed)
            .execute(&mut conn)
            .await?;
        }
        Ok(())
    }
}

/// A `std` duration as a PostgreSQL interval.
fn pg_interval(duration: Duration) -> diesel::pg::data_types::PgInterval {
    diesel::pg::data_types::PgInterval::from_microseconds(
        i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    )
}

/// The relay's metrics, by outbox table.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "outbox_published_total",
        "Events published and confirmed by the broker",
    )
    .labelled(),
    Metric::counter(
        "outbox_publish_failures_total",
        "Publishes nacked, returned or unconfirmed (retried)",
    )
    .labelled(),
    Metric::gauge(
        "outbox_pending_events",
        "Events written but not yet confirmed by the broker",
    )
    .labelled(),
    Metric::gauge(
        "outbox_oldest_pending_seconds",
        "Age of the oldest unpublished event",
    )
    .labelled(),
];

/// Every 5 s: `outbox_pending_events` and `outbox_oldest_pending_seconds` for `table`.
async fn report_backlog(pool: PgPool, table: String, shutdown: CancellationToken) {
    #[derive(diesel::QueryableByName)]
    struct Backlog {
        #[diesel(sql_type = BigInt)]
        pending: i64,
        #[diesel(sql_type = Double)]
        oldest_seconds: f64,
    }
    loop {
        let backlog = async {
            let mut conn = pool.get().await.ok()?;
            flightmesh_db::prepared(format!(
                "SELECT count(*) AS pending, \
                 COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest_seconds \
                 FROM {table} WHERE published_at IS NULL"
            ))
            .get_result::<Backlog>(&mut conn)
            .await
            .ok()
        }
        .await;
        if let Some(backlog) = backlog {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("outbox_pending_events", "table" => table.clone())
                .set(backlog.pending as f64);
            metrics::gauge!("outbox_oldest_pending_seconds", "table" => table.clone())
                .set(backlog.oldest_seconds);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
