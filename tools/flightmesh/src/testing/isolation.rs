//! What a test keeps to itself on the shared PostgreSQL, RabbitMQ and Redis: its names, the
//! environment its services run with, and the cleanup that leaves the broker and Redis as they were.
//!
//! A run stopped without its `Drop`s (Ctrl-C, SIGKILL) cannot clean up. So every [`Isolation`] is
//! named after its process ([`owned_name`]) and listed in a Redis set, [`LIVE_ISOLATIONS`], until
//! its [`cleanup`]; the first `Isolation` of each later process removes what the listed ones of
//! ended processes left. The set is what makes that possible: the broker cannot list its queues
//! over AMQP.

use std::future::Future;
use std::sync::Once;

use flightmesh_runtime::Env;
use flightmesh_stats_worker::topology::ConsumerConfig;
use flightmesh_testkit::{ServiceRole, TestDatabase, orphaned, owned_name};
use redis::AsyncCommands;

use super::{AMQP_URL, REDIS_URL};

/// The Redis set of the isolations not yet cleaned up, by [`Isolation::id`].
pub const LIVE_ISOLATIONS: &str = "flightmesh:test:isolations";
/// What [`Isolation::id`]s start with.
const ID_PREFIX: &str = "t";
/// [`Isolation::retry_budget`] unless a test says otherwise.
const DEFAULT_RETRY_BUDGET: u32 = 3;
/// Retry queues removed at the least: a process a test starts without `RETRY_BUDGET` declares the
/// default's 5, whatever [`Isolation::retry_budget`] says; the broker answers a delete of a queue
/// that does not exist with success.
const RETRY_QUEUES_REMOVED: u32 = 10;

/// Names a test mesh keeps to itself on the shared broker and Redis.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// What the names below are made of: `t_{pid}_{32 hex digits}`.
    pub id: String,
    /// Booking events exchange.
    pub exchange: String,
    /// Catalog events exchange.
    pub catalog_exchange: String,
    /// Stats queue.
    pub stats_queue: String,
    /// Redis key prefix.
    pub redis_prefix: String,
    /// The stats worker's `RETRY_BUDGET` (how many retry queues it declares).
    pub retry_budget: u32,
}

impl Isolation {
    /// Fresh unique names, listed in [`LIVE_ISOLATIONS`] until [`cleanup`]. The first call in a
    /// process first removes what ended processes left ([`sweep_orphans`]).
    #[must_use]
    pub fn new() -> Self {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_orphans);
        let names = Self::named(owned_name(ID_PREFIX), DEFAULT_RETRY_BUDGET);
        let id = names.id.clone();
        aside(async move {
            let mut redis = redis_connection().await?;
            redis.sadd::<_, _, ()>(LIVE_ISOLATIONS, id).await.ok()
        });
        names
    }

    /// The names made of `id` (not listed anywhere).
    #[must_use]
    pub fn named(id: String, retry_budget: u32) -> Self {
        Self {
            exchange: format!("{id}.bookings"),
            catalog_exchange: format!("{id}.catalog"),
            stats_queue: format!("{id}.stats"),
            redis_prefix: format!("{id}:"),
            retry_budget,
            id,
        }
    }

    /// The stats worker's consumer under these names, read through its own configuration: the
    /// exchanges and queues it declares, named as it names them.
    ///
    /// # Panics
    /// If the names are not a valid configuration (they always are).
    #[must_use]
    pub fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig::from_env(&Env::from_pairs([
            ("AMQP_URL", AMQP_URL.to_owned()),
            ("BOOKINGS_EXCHANGE", self.exchange.clone()),
            ("CATALOG_EXCHANGE", self.catalog_exchange.clone()),
            ("STATS_QUEUE", self.stats_queue.clone()),
            ("RETRY_BUDGET", self.retry_budget.to_string()),
        ]))
        .expect("the test names are a valid consumer configuration")
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Self::new()
    }
}

/// The environment a test mesh runs with: loopback ephemeral ports, the test database, its own
/// exchanges, queue and Redis prefix, short retry delays, no drain delay.
///
/// Each service with a schema connects as its own role, as deployed (`FLIGHTS_DATABASE_URL`,
/// `BOOKINGS_DATABASE_URL`, `GATEWAY_DATABASE_URL`: the role owns its schema and cannot read the
/// others'). The unprefixed `DATABASE_URL` is the admin's, for a service built alone from this
/// environment.
#[must_use]
pub fn test_env(db: &TestDatabase, names: &Isolation) -> Env {
    let mut env = Env::from_pairs([
        ("DATABASE_URL", db.url()),
        ("DRAIN_DELAY", "0s"),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("BOOKINGS_EXCHANGE", names.exchange.as_str()),
        ("CATALOG_EXCHANGE", names.catalog_exchange.as_str()),
        ("STATS_QUEUE", names.stats_queue.as_str()),
        ("REDIS_KEY_PREFIX", names.redis_prefix.as_str()),
        ("RETRY_BASE_DELAY", "50ms"),
        ("ENVIRONMENT", "development"),
        // Read by the gateway and by bookings; production tests set `ACCESS_POLICY` for both.
        ("ACCESS_POLICY", "compatible"),
        // Tests make many AI calls from one address; the limit tests set their own budgets.
        ("RATE_LIMIT_AI", "10000/60s"),
        ("RATE_LIMIT_DEFAULT", "1000000/60s"),
        ("AMQP_URL", AMQP_URL),
        ("REDIS_URL", REDIS_URL),
        ("LOG_FORMAT", "text"),
    ]);
    env = env.set("RETRY_BUDGET", names.retry_budget.to_string());
    // The gateway's admin port; a replica built from this env without a prefix gets ephemeral
    // ports too.
    env = env
        .with_default("ADMIN_ADDR", "127.0.0.1:0")
        .with_default("GRPC_ADDR", "127.0.0.1:0");
    for service in ["FLIGHTS", "BOOKINGS", "STATS", "AI"] {
        env = env
            .with_default(format!("{service}_GRPC_ADDR"), "127.0.0.1:0")
            .with_default(format!("{service}_ADMIN_ADDR"), "127.0.0.1:0");
    }
    for service in ServiceRole::ALL {
        env = env.set(
            format!("{}DATABASE_URL", service.env_prefix()),
            db.service_url(service),
        );
    }
    env
}

/// Leaves the shared broker and Redis as they were before the test: deletes its exchanges,
/// queues and keys, and takes it off [`LIVE_ISOLATIONS`].
pub fn cleanup(names: Isolation) {
    aside(async move {
        remove(&names).await;
        Some(())
    });
}

/// Removes what the isolations of ended processes left in [`LIVE_ISOLATIONS`] (a run killed
/// before its cleanup): their exchanges, queues (with the messages they held) and keys. The
/// isolations of running processes, a parallel test run's included, are left alone.
pub fn sweep_orphans() {
    aside(async {
        let mut redis = redis_connection().await?;
        let ids: Vec<String> = redis.smembers(LIVE_ISOLATIONS).await.ok()?;
        for id in ids.into_iter().filter(|id| orphaned(ID_PREFIX, id)) {
            remove(&Isolation::named(id, DEFAULT_RETRY_BUDGET)).await;
        }
        Some(())
    });
}

/// Deletes `names`' exchanges, queues and keys, then takes it off [`LIVE_ISOLATIONS`]. When the
/// broker cannot be reached it stays listed, so that a later sweep tries again.
async fn remove(names: &Isolation) {
    let consumer = Isolation {
        retry_budget: names.retry_budget.max(RETRY_QUEUES_REMOVED),
        ..names.clone()
    }
    .consumer();
    let mut reached = false;
    if let Ok(connection) =
        flightmesh_events::amqp::connect(&consumer.amqp_url, "test cleanup").await
        && let Ok(channel) = connection.create_channel().await
    {
        reached = true;
        for exchange in [
            &consumer.bookings_exchange,
            &consumer.catalog_exchange,
            &consumer.dead_exchange(),
        ] {
            let _ = channel
                .exchange_delete(
                    exchange.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
        for queue in consumer.queues() {
            let _ = channel
                .queue_delete(
                    queue.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
    }
    if let Some(mut redis) = redis_connection().await {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", names.redis_prefix))
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis.del(keys).await;
        }
        if reached {
            let _: Result<i64, _> = redis.srem(LIVE_ISOLATIONS, &names.id).await;
        }
    }
}

async fn redis_connection() -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(REDIS_URL).ok()?;
    client.get_multiplexed_async_connection().await.ok()
}

/// Runs `work` to its end on a thread of its own, so that synchronous code (a `Drop`, a
/// constructor) inside or outside a Tokio runtime can wait for it.
fn aside<F>(work: F)
where
    F: Future<Output = Option<()>> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(work)
    })
    .join();
}
