//! The flights service's configuration, read once from the environment.

use flightmesh_db::DbConfig;
use std::time::Duration;

use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::HostConfig;

/// gRPC and admin addresses with this service's default ports.
const HOST_VARS: [Var; 5] = HostConfig::vars("0.0.0.0:50051", "0.0.0.0:51051");

/// `MIGRATE_ON_START`.
const MIGRATE_ON_START: Var = Var::new(
    "MIGRATE_ON_START",
    "true",
    "Apply pending migrations at start (Helm runs them in a hook Job and sets this to false)",
);

/// `BOOKINGS_URL`.
const BOOKINGS_URL: Var = Var::new(
    "BOOKINGS_URL",
    "http://127.0.0.1:50052",
    "gRPC URL of the bookings service (it keeps the seat ledger behind `seats_available`)",
);
/// `BOOKINGS_TIMEOUT`.
const BOOKINGS_TIMEOUT: Var = Var::new(
    "BOOKINGS_TIMEOUT",
    "2s",
    "Deadline of a seat-usage lookup in the bookings service",
);

/// `CATALOG_EXCHANGE`.
const CATALOG_EXCHANGE: Var = Var::new(
    "CATALOG_EXCHANGE",
    "flightmesh.catalog",
    "Topic exchange catalog events (`destination.created`, `destination.described`, `catalog.changed`) are published to",
);
/// `OUTBOX_RELAY`.
const OUTBOX_RELAY: Var = Var::new(
    "OUTBOX_RELAY",
    "true",
    "Run the outbox relay in this process (several replicas may; they share the work)",
);

/// `OUTBOX_RETENTION`.
const OUTBOX_RETENTION: Var = Var::new(
    "OUTBOX_RETENTION",
    "1h",
    "How long published catalog events are kept in the outbox before the relay's process deletes them",
);

/// `EMBEDDING_INDEX_REFRESH`.
const EMBEDDING_INDEX_REFRESH: Var = Var::new(
    "EMBEDDING_INDEX_REFRESH",
    "2s",
    "Longest time the in-memory destination search index may lag embeddings written through other replicas",
);

/// `CATALOG_CACHE_TTL`.
const CATALOG_CACHE_TTL: Var = Var::new(
    "CATALOG_CACHE_TTL",
    "10s",
    "Longest a cached catalog answer (destinations) lives when no `catalog.changed` event drops it first; `0s`: not kept, concurrent identical reads share one query",
);
/// `SEATS_CACHE_TTL`.
const SEATS_CACHE_TTL: Var = Var::new(
    "SEATS_CACHE_TTL",
    "0s",
    "How long an answer that shows `seats_available` is kept (bookings change seats without catalog events); `0s`: not kept, concurrent identical reads share one lookup",
);

/// Everything the flights service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Where the bookings service is.
    pub bookings_url: String,
    /// Deadline of a seat-usage lookup.
    pub bookings_timeout: Duration,
    /// RabbitMQ.
    pub amqp_url: Secret<String>,
    /// Where catalog events go.
    pub exchange: String,
    /// Whether this process relays the outbox.
    pub relay: bool,
    /// How long published outbox rows are kept.
    pub outbox_retention: Duration,
    /// How often the embedding index reads back other replicas' writes.
    pub embedding_index_refresh: Duration,
    /// How long cached catalog answers live.
    pub cache: crate::cache::CacheConfig,
}

impl Config {
    /// Every variable the service reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = HOST_VARS.to_vec();
        vars.extend_from_slice(DbConfig::VARS);
        vars.extend([
            MIGRATE_ON_START,
            BOOKINGS_URL,
            BOOKINGS_TIMEOUT,
            flightmesh_events::amqp::AMQP_URL,
            CATALOG_EXCHANGE,
            OUTBOX_RELAY,
            OUTBOX_RETENTION,
            EMBEDDING_INDEX_REFRESH,
            CATALOG_CACHE_TTL,
            SEATS_CACHE_TTL,
        ]);
        vars
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
            db: DbConfig::from_env(env)?,
            migrate_on_start: env.get(&MIGRATE_ON_START)?,
            bookings_url: env.get(&BOOKINGS_URL)?,
            bookings_timeout: env.get::<Dur>(&BOOKINGS_TIMEOUT)?.0,
            amqp_url: env.get(&flightmesh_events::amqp::AMQP_URL)?,
            exchange: env.get(&CATALOG_EXCHANGE)?,
            relay: env.get(&OUTBOX_RELAY)?,
            outbox_retention: env.get::<Dur>(&OUTBOX_RETENTION)?.0,
            embedding_index_refresh: env.get::<Dur>(&EMBEDDING_INDEX_REFRESH)?.0,
            cache: crate::cache::CacheConfig {
                catalog_ttl: env.get::<Dur>(&CATALOG_CACHE_TTL)?.0,
                seats_ttl: env.get::<Dur>(&SEATS_CACHE_TTL)?.0,
            },
        })
    }
}
