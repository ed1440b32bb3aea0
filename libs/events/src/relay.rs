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

mod backlog;
mod claim;
mod publish;

use std::sync::Arc;
use std::time::Duration;

use flightmesh_db::{DbError, PgPool};
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::backoff::Backoff;
use flightmesh_runtime::config::{Dur, Reader, Secret, Shared, Var};
use flightmesh_runtime::host::Host;
use lapin::types::ShortString;
use tokio::sync::Notify;

pub use backlog::METRICS;
pub use publish::UNROUTABLE_GRACE;

use backlog::report_backlog;
use publish::{Published, Publisher};

/// `OUTBOX_RELAY`: whether a service with an outbox runs its relay in this process.
pub const OUTBOX_RELAY: Var = Var::new("OUTBOX_RELAY", "true")
    .doc("Run the outbox relay in this process (several replicas may; they share the work)");

/// `OUTBOX_RETENTION`: how long published rows stay (each service says what its rows are).
pub const OUTBOX_RETENTION: Shared = Shared::new("OUTBOX_RETENTION", "1h");

/// Which relay settings a publishing service lets its environment change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// None: [`RelayConfig::new`]'s batch size and lease.
    Defaults,
    /// `OUTBOX_BATCH_SIZE`, `OUTBOX_LEASE` and the fault tests' `OUTBOX_RELAY_TEST_PAUSE`.
    FromEnvironment,
}

/// A publishing service's outbox settings, read in one place for every such service: where its
/// events go, whether this process relays them, how, and how long published rows stay.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// RabbitMQ (`AMQP_URL`).
    pub amqp_url: Secret<String>,
    /// The topic exchange the service publishes to.
    pub exchange: String,
    /// Whether this process runs the relay and the purge (`OUTBOX_RELAY`).
    pub relay: bool,
    /// Rows per relay round.
    pub batch_size: i64,
    /// How long a relay holds the rows it claimed.
    pub lease: Duration,
    /// Fault-injection hook: see [`RelayConfig::pause_after_publish`].
    pub pause_after_publish: Option<Duration>,
    /// How long published rows are kept (`OUTBOX_RETENTION`).
    pub retention: Duration,
}

impl PublisherConfig {
    /// Reads, in this order: `AMQP_URL`, `exchange` (the service's own variable and docs),
    /// `OUTBOX_RELAY`, the relay's `tuning` variables if any, then `OUTBOX_RETENTION`, documented
    /// by `retention_doc` (the service says what its published rows are).
    pub fn read(
        r: &mut Reader<'_>,
        exchange: Var,
        tuning: Tuning,
        retention_doc: &'static str,
    ) -> Self {
        let amqp_url = r.get(crate::amqp::AMQP_URL);
        let exchange = r.get(exchange);
        let relay = r.get(OUTBOX_RELAY);
        let (batch_size, lease, pause_after_publish) = match tuning {
            Tuning::Defaults => (DEFAULT_BATCH_SIZE, DEFAULT_LEASE, None),
            Tuning::FromEnvironment => (
                r.within(
                    Var::new("OUTBOX_BATCH_SIZE", "500").doc(
                        "Events the relay publishes per round",
                    ),
                    1..=10_000,
                ),
                r.duration(Var::new("OUTBOX_LEASE", "30s").doc(
                    "How long a relay holds the rows it claimed: a relay that dies after publishing leaves them to another replica after this",
                )),
                // A fault-injection hook (tools/faults), not a setting: unset in every deployment.
                r.opt::<Dur>(Var::optional("OUTBOX_RELAY_TEST_PAUSE").doc(
                    "Test hook only: the relay pauses this long between a confirmed publish and marking its rows (the fault tests kill it there)",
                ))
                .map(|pause| pause.0),
            ),
        };
        Self {
            amqp_url,
            exchange,
            relay,
            batch_size,
            lease,
            pause_after_publish,
            retention: r.duration(OUTBOX_RETENTION.doc(retention_doc)),
        }
    }

    /// A relay of the outbox `table` to this exchange, with this tuning.
    #[must_use]
    pub fn relay_config(&self, table: &str) -> RelayConfig {
        let mut config =
            RelayConfig::new(table, self.amqp_url.clone(), vec![self.exchange.clone()]);
        config.batch_size = self.batch_size;
        config.lease = self.lease;
        config.pause_after_publish = self.pause_after_publish;
        config
    }
}

/// Rows per round unless tuned.
const DEFAULT_BATCH_SIZE: i64 = 500;
/// A claimed row's lease unless tuned.
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

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
            batch_size: DEFAULT_BATCH_SIZE,
            lease: DEFAULT_LEASE,
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
    /// The table's counters, labelled once when it starts (after the recorder is installed),
    /// not per batch.
    published: metrics::Counter,
    failures: metrics::Counter,
}

impl Relay {
    /// A relay over `pool` (the emitting service's pool).
    #[must_use]
    pub fn new(pool: PgPool, config: RelayConfig) -> Self {
        Self {
            published: metrics::Counter::noop(),
            failures: metrics::Counter::noop(),
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

    /// Runs this relay, and the purge of rows published more than `retention` ago, as tasks of
    /// `host` (what a service does when `OUTBOX_RELAY` is on).
    pub fn spawn_on(self, host: &mut Host, retention: Duration) {
        let purge = crate::outbox::RetentionConfig::new(&self.config.table, retention);
        let pool = self.pool.clone();
        host.spawn("outbox relay", move |shutdown| self.run(shutdown));
        host.spawn("outbox purge", move |shutdown| {
            crate::outbox::purge_published_forever(pool, purge, shutdown)
        });
    }

    /// Runs until `shutdown`, then publishes what is pending for at most `flush_timeout`.
    /// Run it as a supervised task (`Host::spawn`): it returns only after `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        flightmesh_runtime::metrics::declare(METRICS);
        let table = self.config.table.clone();
        self.published = metrics::counter!("outbox_published_total", "table" => table.clone());
        self.failures = metrics::counter!("outbox_publish_failures_total", "table" => table);
        // The table's failure counter exists from the start, at zero, for alerts on its rate.
        self.failures.increment(0);
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
        self.published.increment(sent.len() as u64);
        if !failed.is_empty() {
            self.failures.increment(failed.len() as u64);
        }
        match broker_error {
            Some(err) => Err(err.into()),
            None if failed.is_empty() => Ok(sent.len()),
            None => Err(RoundError::Unconfirmed(failed.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightmesh_runtime::config::{Env, read};

    fn read_publisher(r: &mut Reader<'_>, tuning: Tuning) -> PublisherConfig {
        let exchange = Var::new("EXCHANGE", "x").doc("doc");
        PublisherConfig::read(r, exchange, tuning, "doc")
    }

    fn publisher(env: &Env, tuning: Tuning) -> PublisherConfig {
        read(env, |r| read_publisher(r, tuning)).unwrap()
    }

    #[test]
    fn an_untuned_environment_relays_as_a_service_that_allows_no_tuning() {
        let unset = Env::from_pairs::<&str, &str>([]);
        let tunable = publisher(&unset, Tuning::FromEnvironment).relay_config("s.outbox");
        let fixed = publisher(&unset, Tuning::Defaults).relay_config("s.outbox");
        assert_eq!(
            (
                tunable.batch_size,
                tunable.lease,
                tunable.pause_after_publish
            ),
            (fixed.batch_size, fixed.lease, fixed.pause_after_publish)
        );
        assert_eq!(fixed.exchanges, ["x"]);
    }

    #[test]
    fn only_a_tunable_service_reads_the_relay_variables() {
        let env = Env::from_pairs([
            ("OUTBOX_BATCH_SIZE", "7"),
            ("OUTBOX_LEASE", "3s"),
            ("OUTBOX_RELAY_TEST_PAUSE", "1s"),
        ]);
        let tuned = publisher(&env, Tuning::FromEnvironment);
        assert_eq!(
            (tuned.batch_size, tuned.lease, tuned.pause_after_publish),
            (7, Duration::from_secs(3), Some(Duration::from_secs(1)))
        );
        let fixed = publisher(&env, Tuning::Defaults);
        assert_eq!((fixed.batch_size, fixed.pause_after_publish), (500, None));
        let names = |tuning| {
            flightmesh_runtime::config::declared(|r| read_publisher(r, tuning))
                .into_iter()
                .map(|var| var.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Tuning::FromEnvironment),
            [
                "AMQP_URL",
                "EXCHANGE",
                "OUTBOX_RELAY",
                "OUTBOX_BATCH_SIZE",
                "OUTBOX_LEASE",
                "OUTBOX_RELAY_TEST_PAUSE",
                "OUTBOX_RETENTION"
            ]
        );
        assert_eq!(
            names(Tuning::Defaults),
            ["AMQP_URL", "EXCHANGE", "OUTBOX_RELAY", "OUTBOX_RETENTION"]
        );
    }
}
