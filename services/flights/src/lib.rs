//! The flights service: the catalog of destinations and flights.
//!
//! It owns the PostgreSQL schema `flights` (migrations embedded from `migrations/`) and serves
//! `flightmesh.flights.v1.FlightService` over gRPC. Modules, in the order a request meets them:
//! [`grpc`] (handlers) → [`validate`] (input rules, Spanish messages) → [`store`] (SQL) →
//! [`error`] (the one mapping of domain errors to gRPC statuses). [`cache`] answers catalog
//! reads from memory, dropped on every replica by `catalog.changed` events. [`seats`] asks the
//! bookings service how many seats are taken (it keeps the ledger). [`embeddings`] stores destination
//! embeddings and searches them through the in-memory [`vectors`] index. [`config`] reads the env.
//!
//! `serve(config, shutdown)` is what both the binary and the tests run.

pub mod cache;
pub mod config;
pub mod embeddings;
pub mod error;
pub mod events;
pub mod grpc;
pub mod schema;
pub mod seats;
pub mod store;
pub mod validate;
pub mod vectors;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use flightmesh_db::{DbConfig, DbError};
use flightmesh_proto::flights::flight_service_server::FlightServiceServer;
use flightmesh_runtime::{CancellationToken, Host};

pub use config::Config;

/// The service's name in logs and health.
pub const SERVICE_NAME: &str = "flights";
/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "flights";
/// The schema's migrations, compiled into the binary: the service's own, and the outbox table
/// every publishing service shares.
pub const MIGRATIONS: &[EmbeddedMigrations] = &[
    embed_migrations!("migrations"),
    flightmesh_events::outbox::MIGRATIONS,
];

/// Start-up and run-time failures, with their cause chain (one type for every service).
pub use flightmesh_runtime::BoxError;

/// Applies pending migrations of the `flights` schema.
pub async fn migrate(db: &DbConfig) -> Result<Vec<String>, DbError> {
    flightmesh_db::migrate(&db.url, SCHEMA, MIGRATIONS).await
}

/// Migrates (if configured), connects the pool and binds the ports.
pub async fn build(config: Config) -> Result<Host, BoxError> {
    if config.migrate_on_start {
        migrate(&config.db).await?;
    }
    let pool = flightmesh_db::pool(&config.db);
    let seats = seats::SeatLedger::new(
        flightmesh_runtime::channel::mesh_channel(&config.bookings_url)?,
        config.bookings_timeout,
    );
    let cache = cache::CatalogCache::new(config.cache);
    let catalog = grpc::Catalog::new(
        store::Store::new(pool.clone(), config.publisher.exchange.clone()),
        seats,
        embeddings::Embeddings::new(
            pool.clone(),
            config.publisher.exchange.clone(),
            config.embedding_index_refresh,
        ),
        cache.clone(),
    );
    let mut relay_config = config.publisher.relay_config(events::OUTBOX);
    // Notices, not messages someone waits for: nobody consumes description changes yet (the
    // stats worker binds only `destination.created`), and `catalog.changed` only tells the
    // replicas' caches (their TTL covers a missed one).
    relay_config.best_effort_events = vec![
        events::DESTINATION_DESCRIBED.to_owned(),
        events::CATALOG_CHANGED.to_owned(),
    ];
    let relay = flightmesh_events::Relay::new(pool.clone(), relay_config);

    let mut host = Host::bind(SERVICE_NAME, &config.host).await?;
    host.add_service(FlightServiceServer::new(catalog))
        .readiness_check("database", {
            // Not through the pool: readiness must not queue behind a saturated pool.
            let health = std::sync::Arc::new(flightmesh_db::DbHealth::new(&config.db));
            move || {
                let health = health.clone();
                async move { health.check().await.map_err(|e| e.to_string()) }
            }
        });
    if config.publisher.relay {
        // Published rows are history only: bounded by OUTBOX_RETENTION, as in bookings.
        relay.spawn_on(&mut host, config.publisher.retention);
    }
    if !config.cache.catalog_ttl.is_zero() {
        let (amqp_url, exchange) = (
            config.publisher.amqp_url.clone(),
            config.publisher.exchange.clone(),
        );
        host.spawn("catalog cache events", move |shutdown| {
            cache::follow_catalog_events(cache, amqp_url, exchange, shutdown)
        });
    }
    Ok(host)
}

/// Builds and runs the service until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Ok(build(config).await?.run(shutdown).await?)
}

flightmesh_runtime::service_binary! {
    name: SERVICE_NAME, config: Config,
    about: "The catalog service: destinations and flights over gRPC, on its own PostgreSQL schema",
    commands: |config| {
        /// Apply the migrations of the `flights` schema and exit (the chart's hook Job runs this)
        Migrate => Ok(migrate(&config.db).await.map(drop)?),
    }
}
