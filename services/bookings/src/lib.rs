//! The bookings service: prices a booking from the flight it is for, takes a seat, and stores
//! the booking with its event in one transaction (transactional outbox); a relay in the same
//! process publishes the events to RabbitMQ.
//!
//! Modules, in the order a booking meets them: [`grpc`] (handlers, validation) → [`flights`]
//! (the flight snapshot from the catalog) → [`pricing`] (the exact formula) → [`store`] (the one
//! transaction: seat ledger, booking row, outbox row, idempotency key) → [`events`] (the
//! `BookingEvent` written to the outbox). [`error`] maps failures to gRPC statuses once.

pub mod config;
pub mod error;
pub mod events;
pub mod flights;
pub mod grpc;
pub mod pricing;
pub mod schema;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use flightmesh_db::{DbConfig, DbError};
use flightmesh_events::Relay;
use flightmesh_proto::bookings::booking_service_server::BookingServiceServer;
use flightmesh_runtime::{CancellationToken, Host};

pub use config::Config;

/// The service's name in logs and health.
pub const SERVICE_NAME: &str = "bookings";
/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "bookings";
/// The schema's migrations, compiled into the binary: the service's own, and the outbox table
/// every publishing service shares.
pub const MIGRATIONS: &[EmbeddedMigrations] = &[
    embed_migrations!("migrations"),
    flightmesh_events::outbox::MIGRATIONS,
];
/// How often expired Idempotency-Keys are purged: a quarter of the retention, hourly at most.
fn purge_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Start-up and run-time failures, with their cause chain (one type for every service).
pub use flightmesh_runtime::BoxError;

/// Applies pending migrations of the `bookings` schema.
pub async fn migrate(db: &DbConfig) -> Result<Vec<String>, DbError> {
    flightmesh_db::migrate(&db.url, SCHEMA, MIGRATIONS).await
}

/// Migrates (if configured), connects the pool, prepares the relay and binds the ports.
pub async fn build(config: Config) -> Result<Host, BoxError> {
    flightmesh_runtime::metrics::declare(grpc::METRICS);
    if config.migrate_on_start {
        migrate(&config.db).await?;
    }
    let pool = flightmesh_db::pool(&config.db);
    let store = store::Store::new(
        pool.clone(),
        flightmesh_db::SharedConnections::new(&config.db, config.shared_connections),
        config.publisher.exchange.clone(),
    );
    let catalog = Arc::new(flights::FlightCatalog::new(
        flightmesh_runtime::channel::mesh_channel(&config.flights_url)?,
        config.flights_timeout,
        config.flight_cache_ttl,
    ));

    let relay = Relay::new(pool.clone(), config.publisher.relay_config(store::OUTBOX));
    let waker = relay.waker();

    let mut host = Host::bind(SERVICE_NAME, &config.host).await?;
    host.add_service(BookingServiceServer::new(grpc::Bookings::new(
        store.clone(),
        catalog,
        waker,
        config.policy,
    )))
    .readiness_check("database", {
        // Not through the pool: readiness must not queue behind a saturated pool.
        let health = Arc::new(flightmesh_db::DbHealth::new(&config.db));
        move || {
            let health = health.clone();
            async move { health.check().await.map_err(|e| e.to_string()) }
        }
    });
    if config.publisher.relay {
        // Published rows are only the events feed's history: bounded by OUTBOX_RETENTION.
        relay.spawn_on(&mut host, config.publisher.retention);
    }
    let retention = config.idempotency_retention;
    host.spawn("idempotency key purge", move |shutdown| {
        purge_keys(store, retention, shutdown)
    });
    Ok(host)
}

/// Builds and runs the service until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Ok(build(config).await?.run(shutdown).await?)
}

async fn purge_keys(store: store::Store, retention: Duration, shutdown: CancellationToken) {
    loop {
        match store.purge_idempotency_keys(retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
            Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(purge_every(retention)) => {}
        }
    }
}

flightmesh_runtime::service_binary! {
    name: SERVICE_NAME, config: Config,
    about: "The bookings service: exact pricing, the seat ledger, idempotent creation, cancellation and the booking outbox",
    commands: |config| {
        /// Apply the migrations of the `bookings` schema and exit (the chart's hook Job runs this)
        Migrate => Ok(migrate(&config.db).await.map(drop)?),
    }
}
