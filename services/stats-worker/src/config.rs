//! The stats worker's configuration, read once from the environment.

use std::time::Duration;

use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::HostConfig;

const HOST_VARS: [Var; 5] = HostConfig::vars("0.0.0.0:50053", "0.0.0.0:51053");
const REDIS_URL: Var = Var::new("REDIS_URL", "redis://127.0.0.1:6379", "Redis URL").secret();
const REDIS_KEY_PREFIX: Var = Var::new(
    "REDIS_KEY_PREFIX",
    "",
    "Prepended to every Redis key (the contract's keys have none; tests isolate themselves with one)",
);
const REDIS_TIMEOUT: Var = Var::new(
    "REDIS_TIMEOUT",
    "1s",
    "Connect and response timeout of Redis commands (503 past it)",
);
const BOOKINGS_EXCHANGE: Var = Var::new(
    "BOOKINGS_EXCHANGE",
    "flightmesh.bookings",
    "Topic exchange of booking events",
);
const CATALOG_EXCHANGE: Var = Var::new(
    "CATALOG_EXCHANGE",
    "flightmesh.catalog",
    "Topic exchange of catalog events",
);
const STATS_QUEUE: Var = Var::new(
    "STATS_QUEUE",
    "flightmesh.stats",
    "The worker's queue; `<queue>.retry.<n>` and `<queue>.dead` are derived from it",
);
const STATS_QUEUE_TYPE: Var = Var::new(
    "STATS_QUEUE_TYPE",
    "classic",
    "`classic` or `quorum` (replicated: use it on a RabbitMQ cluster)",
);
const PREFETCH: Var = Var::new(
    "PREFETCH",
    "32",
    "Unacknowledged events a consumer holds, and handles, at once",
);
const RETRY_BUDGET: Var = Var::new(
    "RETRY_BUDGET",
    "5",
    "Retries of an event that fails to apply before it is dead-lettered",
);
const RETRY_BASE_DELAY: Var = Var::new(
    "RETRY_BASE_DELAY",
    "1s",
    "Delay before the first retry; each next retry waits twice as long",
);
const LOG_LIST_CAP: Var = Var::new(
    "LOG_LIST_CAP",
    "10000",
    "Entries kept (newest first) in `logs:notifications`, `logs:candy_distribution` and `logs:dead_letter`; the totals the API answers are counters, not list lengths",
);
const CONSUMER: Var = Var::new(
    "CONSUMER",
    "true",
    "Consume events in this process (`false`: serve the stats API only)",
);
const FLIGHTS_URL: Var = Var::new(
    "FLIGHTS_URL",
    "http://127.0.0.1:50051",
    "gRPC URL of the flights service (tax of a destination)",
);
const BOOKINGS_URL: Var = Var::new(
    "BOOKINGS_URL",
    "http://127.0.0.1:50052",
    "gRPC URL of the bookings service (the source of truth a rebuild reads)",
);

/// Everything the stats worker needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
    /// Redis.
    pub redis_url: Secret<String>,
    /// Key prefix.
    pub key_prefix: String,
    /// Redis connect/response timeout.
    pub redis_timeout: Duration,
    /// RabbitMQ.
    pub amqp_url: Secret<String>,
    /// Booking events exchange.
    pub bookings_exchange: String,
    /// Catalog events exchange.
    pub catalog_exchange: String,
    /// The worker's queue.
    pub queue: String,
    /// Quorum (replicated) queues.
    pub quorum: bool,
    /// Prefetch.
    pub prefetch: u16,
    /// Retries before dead-lettering.
    pub retry_budget: u32,
    /// First retry delay.
    pub retry_base_delay: Duration,
    /// Entries kept in each log list.
    pub log_list_cap: u32,
    /// Whether this process consumes.
    pub consumer: bool,
    /// Flights service.
    pub flights_url: String,
    /// Bookings service.
    pub bookings_url: String,
}

impl Config {
    /// Every variable the service reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = HOST_VARS.to_vec();
        vars.extend([
            REDIS_URL,
            REDIS_KEY_PREFIX,
            REDIS_TIMEOUT,
            flightmesh_events::amqp::AMQP_URL,
            BOOKINGS_EXCHANGE,
            CATALOG_EXCHANGE,
            STATS_QUEUE,
            STATS_QUEUE_TYPE,
            PREFETCH,
            RETRY_BUDGET,
            RETRY_BASE_DELAY,
            LOG_LIST_CAP,
            CONSUMER,
            FLIGHTS_URL,
            BOOKINGS_URL,
        ]);
        vars
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let queue_type: String = env.get(&STATS_QUEUE_TYPE)?;
        let quorum = match queue_type.as_str() {
            "classic" => false,
            "quorum" => true,
            other => {
                return Err(ConfigError::invalid(
                    &STATS_QUEUE_TYPE,
                    other,
                    "expected classic or quorum",
                ));
            }
        };
        let prefetch: u16 = env.get(&PREFETCH)?;
        if prefetch == 0 {
            return Err(ConfigError::invalid(&PREFETCH, "0", "must be at least 1"));
        }
        let log_list_cap: u32 = env.get(&LOG_LIST_CAP)?;
        if log_list_cap == 0 {
            return Err(ConfigError::invalid(
                &LOG_LIST_CAP,
                "0",
                "must be at least 1 (lists are never unbounded)",
            ));
        }
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
            redis_url: env.get(&REDIS_URL)?,
            key_prefix: env.raw(&REDIS_KEY_PREFIX).unwrap_or_default(),
            redis_timeout: env.get::<Dur>(&REDIS_TIMEOUT)?.0,
            amqp_url: env.get(&flightmesh_events::amqp::AMQP_URL)?,
            bookings_exchange: env.get(&BOOKINGS_EXCHANGE)?,
            catalog_exchange: env.get(&CATALOG_EXCHANGE)?,
            queue: env.get(&STATS_QUEUE)?,
            quorum,
            prefetch,
            retry_budget: env.get(&RETRY_BUDGET)?,
            retry_base_delay: env.get::<Dur>(&RETRY_BASE_DELAY)?.0,
            log_list_cap,
            consumer: env.get(&CONSUMER)?,
            flights_url: env.get(&FLIGHTS_URL)?,
            bookings_url: env.get(&BOOKINGS_URL)?,
        })
    }
}
