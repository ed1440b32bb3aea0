//! The stats worker's configuration, read once from the environment. Each variable is declared
//! where it is read (`Config::read`, `ConsumerConfig::read`): its name, default and docs row are
//! that one call.

use std::time::Duration;

use flightmesh_runtime::config::{Reader, Secret, Var};
use flightmesh_runtime::host::HostConfig;
use flightmesh_runtime::peers;

use crate::topology::ConsumerConfig;

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
    /// RabbitMQ, the queues and the retries.
    pub events: ConsumerConfig,
    /// Whether this process consumes.
    pub consumer: bool,
    /// Flights service.
    pub flights_url: String,
    /// Bookings service.
    pub bookings_url: String,
}

impl Config {
    /// Reads every variable of the service, in the order of its docs.
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            host: HostConfig::read(r, peers::STATS.grpc_listen, peers::STATS.admin_listen),
            redis_url: r.get(Var::new("REDIS_URL", "redis://127.0.0.1:6379").doc("Redis URL").secret()),
            key_prefix: r
                .raw(Var::new("REDIS_KEY_PREFIX", "").doc(
                    "Prepended to every Redis key (the contract's keys have none; tests isolate themselves with one)",
                ))
                .unwrap_or_default(),
            redis_timeout: r.duration(Var::new("REDIS_TIMEOUT", "1s").doc(
                "Connect and response timeout of Redis commands (503 past it)",
            )),
            events: ConsumerConfig::read(r),
            consumer: r.get(Var::new("CONSUMER", "true").doc(
                "Consume events in this process (`false`: serve the stats API only)",
            )),
            flights_url: r.get(peers::FLIGHTS.url(
                "gRPC URL of the flights service (tax of a destination)",
            )),
            bookings_url: r.get(peers::BOOKINGS.url(
                "gRPC URL of the bookings service (the source of truth a rebuild reads)",
            )),
        }
    }
}

flightmesh_runtime::env_config!(Config);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::QueueType;
    use flightmesh_runtime::config::Env;

    #[test]
    fn every_invalid_variable_is_reported_at_once() {
        let defaults = Config::from_env(&Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(defaults.events.queue_type, QueueType::Classic);
        assert_eq!(defaults.events.retry_base_delay, Duration::from_secs(1));

        let err = Config::from_env(&Env::from_pairs([
            ("STATS_QUEUE_TYPE", "replicated"),
            ("PREFETCH", "0"),
            ("LOG_LIST_CAP", "0"),
            ("RETRY_BASE_DELAY", "1 minute"),
        ]))
        .expect_err("four invalid variables")
        .to_string();
        for name in [
            "STATS_QUEUE_TYPE",
            "PREFETCH",
            "LOG_LIST_CAP",
            "RETRY_BASE_DELAY",
        ] {
            assert!(
                err.contains(&format!("{name}=")),
                "{name} missing from: {err}"
            );
        }
        assert!(err.starts_with("4 configuration errors"), "{err}");
    }
}
