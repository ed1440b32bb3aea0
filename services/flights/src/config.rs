//! The flights service's configuration, read once from the environment. Each variable is
//! declared where it is read (`Config::read`): its name, default and docs row are that one call.

use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_events::{PublisherConfig, Tuning};
use flightmesh_runtime::config::{Reader, Var};
use flightmesh_runtime::host::HostConfig;
use flightmesh_runtime::peers;

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
    /// The outbox: RabbitMQ, the exchange catalog events go to, the relay, published rows'
    /// retention.
    pub publisher: PublisherConfig,
    /// How often the embedding index reads back other replicas' writes.
    pub embedding_index_refresh: Duration,
    /// How long cached catalog answers live.
    pub cache: crate::cache::CacheConfig,
}

impl Config {
    /// Reads every variable of the service, in the order of its docs.
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            host: HostConfig::read(r, peers::FLIGHTS.grpc_listen, peers::FLIGHTS.admin_listen),
            db: DbConfig::read(r),
            migrate_on_start: r.get(flightmesh_db::MIGRATE_ON_START),
            bookings_url: r.get(peers::BOOKINGS.url(
                "gRPC URL of the bookings service (it keeps the seat ledger behind `seats_available`)",
            )),
            bookings_timeout: r.duration(Var::new("BOOKINGS_TIMEOUT", "2s").doc(
                "Deadline of a seat-usage lookup in the bookings service",
            )),
            publisher: PublisherConfig::read(
                r,
                flightmesh_events::amqp::CATALOG_EXCHANGE.doc(
                    "Topic exchange catalog events (`destination.created`, `destination.described`, `catalog.changed`) are published to",
                ),
                Tuning::Defaults,
                "How long published catalog events are kept in the outbox before the relay's process deletes them",
            ),
            embedding_index_refresh: r.duration(Var::new("EMBEDDING_INDEX_REFRESH", "2s").doc(
                "Longest time the in-memory destination search index may lag embeddings written through other replicas",
            )),
            cache: crate::cache::CacheConfig {
                catalog_ttl: r.duration(Var::new("CATALOG_CACHE_TTL", "10s").doc(
                    "Longest a cached catalog answer (destinations) lives when no `catalog.changed` event drops it first; `0s`: not kept, concurrent identical reads share one query",
                )),
                seats_ttl: r.duration(Var::new("SEATS_CACHE_TTL", "0s").doc(
                    "How long an answer that shows `seats_available` is kept (bookings change seats without catalog events); `0s`: not kept, concurrent identical reads share one lookup",
                )),
            },
        }
    }
}

flightmesh_runtime::env_config!(Config);
