//! What a test keeps to itself on the shared PostgreSQL, RabbitMQ and Redis: its names, the
//! environment its services run with, and the cleanup that leaves the broker and Redis as they were.

use flightmesh_runtime::Env;
use flightmesh_stats_worker::topology::ConsumerConfig;
use flightmesh_testkit::{ServiceRole, TestDatabase, unique_name};

use super::{AMQP_URL, REDIS_URL};

/// Names a test mesh keeps to itself on the shared broker and Redis.
#[derive(Debug, Clone)]
pub struct Isolation {
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
    /// Fresh unique names.
    #[must_use]
    pub fn new() -> Self {
        let id = unique_name("t");
        Self {
            exchange: format!("{id}.bookings"),
            catalog_exchange: format!("{id}.catalog"),
            stats_queue: format!("{id}.stats"),
            redis_prefix: format!("{id}:"),
            retry_budget: 3,
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
/// queues and keys.
pub fn cleanup(names: Isolation) {
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let consumer = names.consumer();
            if let Ok(connection) =
                flightmesh_events::amqp::connect(&consumer.amqp_url, "test cleanup").await
                && let Ok(channel) = connection.create_channel().await
            {
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
            if let Ok(client) = redis::Client::open(REDIS_URL)
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", names.redis_prefix))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<i64, _> =
                        redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            }
            Some(())
        })
    })
    .join();
}
