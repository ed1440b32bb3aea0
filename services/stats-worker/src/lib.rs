//! The stats worker: keeps the statistics of the old system in Redis, from the booking and
//! catalog events, exactly once in effect whatever the broker redelivers; and serves them.
//!
//! [`consumer`] reads events from RabbitMQ (retries, dead letters, reconnection) and hands each
//! to [`apply`], which turns it into a plan of Redis operations applied atomically and at most
//! once by one Lua script. [`api`] serves `flightmesh.stats.v1.StatsService` from the same
//! keys ([`keys`]); [`rebuild`] recomputes them from the bookings service. [`redis_store`] holds
//! the process's Redis connection.

mod ack_window;
pub mod api;
pub mod apply;
pub mod config;
pub mod consumer;
mod delivery;
pub mod keys;
pub mod rebuild;
pub mod redis_store;
pub mod topology;

use std::sync::Arc;

use flightmesh_proto::stats::stats_service_server::StatsServiceServer;
use flightmesh_runtime::channel::mesh_channel;
use flightmesh_runtime::{CancellationToken, Host};

pub use config::Config;
use consumer::Consumer;
use keys::Keys;
use redis_store::Redis;

/// The service's name in logs and health.
pub const SERVICE_NAME: &str = "stats-worker";

/// Start-up and run-time failures, with their cause chain (one type for every service).
pub use flightmesh_runtime::BoxError;

/// Prepares Redis (connected on first use), the consumer and the API, and binds the ports.
pub async fn build(config: Config) -> Result<Host, BoxError> {
    flightmesh_runtime::metrics::declare(consumer::METRICS);
    let redis = Arc::new(Redis::new(&config.redis_url, config.redis_timeout)?);
    let keys = Keys::new(&config.key_prefix);
    let api = api::Stats::new(
        redis.clone(),
        keys.clone(),
        mesh_channel(&config.flights_url)?,
        mesh_channel(&config.bookings_url)?,
        config.events.log_cap,
    );
    let mut host = Host::bind(SERVICE_NAME, &config.host).await?;
    host.add_service(StatsServiceServer::new(api))
        .readiness_check("redis", {
            let redis = redis.clone();
            move || {
                let redis = redis.clone();
                async move { redis.ping().await.map_err(|e| e.to_string()) }
            }
        });
    if config.consumer {
        let consumer = Consumer::new(config.events, redis, keys);
        host.spawn("event consumer", move |shutdown| consumer.run(shutdown));
    }
    Ok(host)
}

/// Builds and runs the service until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Ok(build(config).await?.run(shutdown).await?)
}

/// The `rebuild` command: [`rebuild`], then its report on standard output.
#[allow(clippy::print_stdout)]
async fn rebuild_command(config: &Config) -> Result<(), BoxError> {
    let report = rebuild(config).await?;
    println!(
        "rebuilt: {} bookings read, {} facts applied",
        report.bookings_read, report.events_applied
    );
    Ok(())
}

/// Recomputes every statistic from the bookings service and swaps them in (the `rebuild`
/// command; the API's `RebuildStats` does the same).
pub async fn rebuild(config: &Config) -> Result<rebuild::Report, BoxError> {
    let redis = Redis::new(&config.redis_url, config.redis_timeout)?;
    let bookings = flightmesh_proto::bookings::booking_service_client::BookingServiceClient::new(
        mesh_channel(&config.bookings_url)?,
    );
    Ok(rebuild::rebuild(
        &redis,
        &Keys::new(&config.key_prefix),
        bookings,
        config.events.log_cap,
    )
    .await?)
}

flightmesh_runtime::service_binary! {
    name: SERVICE_NAME, config: Config,
    about: "The stats worker: booking and catalog events applied to the statistics in Redis once, served over gRPC",
    commands: |config| {
        /// Recompute the statistics from the bookings service, swap them in and exit
        Rebuild => rebuild_command(&config).await,
    }
}
