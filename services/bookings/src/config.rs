//! The bookings service's configuration, read once from the environment.

use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_runtime::caller::Policy;
use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::HostConfig;

const HOST_VARS: [Var; 5] = HostConfig::vars("0.0.0.0:50052", "0.0.0.0:51052");
const MIGRATE_ON_START: Var = Var::new(
    "MIGRATE_ON_START",
    "true",
    "Apply pending migrations at start (Helm runs them in a hook Job and sets this to false)",
);
const FLIGHTS_URL: Var = Var::new(
    "FLIGHTS_URL",
    "http://127.0.0.1:50051",
    "gRPC URL of the flights service",
);
const FLIGHTS_TIMEOUT: Var = Var::new(
    "FLIGHTS_TIMEOUT",
    "2s",
    "Deadline of one flight lookup (retried up to 3 times while flights is unavailable)",
);
const FLIGHT_CACHE_TTL: Var = Var::new(
    "FLIGHT_CACHE_TTL",
    "2s",
    "How long a fetched flight is reused for pricing (`0s` disables the cache)",
);
const BOOKINGS_EXCHANGE: Var = Var::new(
    "BOOKINGS_EXCHANGE",
    "flightmesh.bookings",
    "Topic exchange booking events are published to",
);
const OUTBOX_RELAY: Var = Var::new(
    "OUTBOX_RELAY",
    "true",
    "Run the outbox relay in this process (several replicas may; they share the work)",
);
const OUTBOX_BATCH_SIZE: Var = Var::new(
    "OUTBOX_BATCH_SIZE",
    "500",
    "Events the relay publishes per round",
);
const OUTBOX_LEASE: Var = Var::new(
    "OUTBOX_LEASE",
    "30s",
    "How long a relay holds the rows it claimed: a relay that dies after publishing leaves them to another replica after this",
);
/// A fault-injection hook (tools/faults), not a setting: unset in every deployment.
const OUTBOX_RELAY_TEST_PAUSE: Var = Var::optional(
    "OUTBOX_RELAY_TEST_PAUSE",
    "Test hook only: the relay pauses this long between a confirmed publish and marking its rows (the fault tests kill it there)",
);
const OUTBOX_RETENTION: Var = Var::new(
    "OUTBOX_RETENTION",
    "1h",
    "How long published outbox rows are kept before the relay's process deletes them (the events feed reaches back this far)",
);
const IDEMPOTENCY_RETENTION: Var = Var::new(
    "IDEMPOTENCY_RETENTION",
    "48h",
    "How long Idempotency-Keys are remembered (the contract asks for at least 24h)",
);
const ACCESS_POLICY: Var = Var::new(
    "ACCESS_POLICY",
    "production",
    "`production` (a caller sees, lists and cancels only the bookings made under its user id; admin: all; the event log is admin-only; no forwarded identity: refused) or `compatible` (all open, as the old clients expect); the same word as the gateway's",
);
const ENVIRONMENT: Var = Var::new(
    "ENVIRONMENT",
    "production",
    "`production` or `development`; production refuses `ACCESS_POLICY=compatible` unless `ALLOW_COMPATIBLE_IN_PRODUCTION=true`, as the gateway does",
);
const ALLOW_COMPATIBLE_IN_PRODUCTION: Var = Var::new(
    "ALLOW_COMPATIBLE_IN_PRODUCTION",
    "false",
    "Lets `ACCESS_POLICY=compatible` start with `ENVIRONMENT=production` (logged as a warning at start)",
);

/// Everything the bookings service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Where the flights service is.
    pub flights_url: String,
    /// Deadline per flight lookup.
    pub flights_timeout: Duration,
    /// Flight snapshot reuse.
    pub flight_cache_ttl: Duration,
    /// RabbitMQ.
    pub amqp_url: Secret<String>,
    /// Where events go.
    pub exchange: String,
    /// Whether this process relays the outbox.
    pub relay: bool,
    /// Relay batch size.
    pub relay_batch_size: i64,
    /// How long a relay holds claimed rows.
    pub relay_lease: Duration,
    /// Fault-injection hook: see `OUTBOX_RELAY_TEST_PAUSE`.
    pub relay_test_pause: Option<Duration>,
    /// How long published outbox rows are kept.
    pub outbox_retention: Duration,
    /// Idempotency-Key retention.
    pub idempotency_retention: Duration,
    /// Who may see and change which bookings.
    pub policy: Policy,
}

impl Config {
    /// Every variable the service reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = HOST_VARS.to_vec();
        vars.extend_from_slice(DbConfig::VARS);
        vars.extend([
            MIGRATE_ON_START,
            FLIGHTS_URL,
            FLIGHTS_TIMEOUT,
            FLIGHT_CACHE_TTL,
            flightmesh_events::amqp::AMQP_URL,
            BOOKINGS_EXCHANGE,
            OUTBOX_RELAY,
            OUTBOX_BATCH_SIZE,
            OUTBOX_LEASE,
            OUTBOX_RELAY_TEST_PAUSE,
            OUTBOX_RETENTION,
            IDEMPOTENCY_RETENTION,
            ACCESS_POLICY,
            ENVIRONMENT,
            ALLOW_COMPATIBLE_IN_PRODUCTION,
        ]);
        vars
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let relay_batch_size: i64 = env.get(&OUTBOX_BATCH_SIZE)?;
        if !(1..=10_000).contains(&relay_batch_size) {
            return Err(ConfigError::invalid(
                &OUTBOX_BATCH_SIZE,
                &relay_batch_size.to_string(),
                "must be 1..=10000",
            ));
        }
        let policy: Policy = env.get(&ACCESS_POLICY)?;
        let production = match env.get::<String>(&ENVIRONMENT)?.as_str() {
            "production" => true,
            "development" => false,
            other => {
                return Err(ConfigError::invalid(
                    &ENVIRONMENT,
                    other,
                    "expected production or development",
                ));
            }
        };
        // The same guard as the gateway's: bookings enforces ownership itself, so an open
        // bookings behind a production gateway must be a deliberate choice too.
        if production && policy == Policy::Compatible {
            if !env.get::<bool>(&ALLOW_COMPATIBLE_IN_PRODUCTION)? {
                return Err(ConfigError::invalid(
                    &ACCESS_POLICY,
                    "compatible",
                    "is refused with ENVIRONMENT=production unless ALLOW_COMPATIBLE_IN_PRODUCTION=true",
                ));
            }
            tracing::warn!(
                "ACCESS_POLICY=compatible in production (ALLOW_COMPATIBLE_IN_PRODUCTION=true): every booking is open to anonymous callers"
            );
        }
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
            db: DbConfig::from_env(env)?,
            migrate_on_start: env.get(&MIGRATE_ON_START)?,
            flights_url: env.get(&FLIGHTS_URL)?,
            flights_timeout: env.get::<Dur>(&FLIGHTS_TIMEOUT)?.0,
            flight_cache_ttl: env.get::<Dur>(&FLIGHT_CACHE_TTL)?.0,
            amqp_url: env.get(&flightmesh_events::amqp::AMQP_URL)?,
            exchange: env.get(&BOOKINGS_EXCHANGE)?,
            relay: env.get(&OUTBOX_RELAY)?,
            relay_batch_size,
            relay_lease: env.get::<Dur>(&OUTBOX_LEASE)?.0,
            relay_test_pause: env.get_opt::<Dur>(&OUTBOX_RELAY_TEST_PAUSE)?.map(|d| d.0),
            outbox_retention: env.get::<Dur>(&OUTBOX_RETENTION)?.0,
            idempotency_retention: env.get::<Dur>(&IDEMPOTENCY_RETENTION)?.0,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_policy_defaults_to_production_and_names_itself_when_wrong() {
        let config = Config::from_env(&Env::from_pairs([("DATABASE_URL", "postgres://x/y")]))
            .expect("defaults are valid");
        assert_eq!(config.policy, Policy::Production);
        let compatible = Env::from_pairs([
            ("DATABASE_URL", "postgres://x/y"),
            ("ENVIRONMENT", "development"),
            ("ACCESS_POLICY", "compatible"),
        ]);
        assert_eq!(
            Config::from_env(&compatible).unwrap().policy,
            Policy::Compatible
        );
        let err = Config::from_env(&Env::from_pairs([
            ("DATABASE_URL", "postgres://x/y"),
            ("ACCESS_POLICY", "open"),
        ]))
        .expect_err("an unknown policy")
        .to_string();
        assert!(err.contains("ACCESS_POLICY"), "{err}");
    }

    #[test]
    fn production_refuses_the_compatible_policy_unless_explicitly_allowed() {
        let compatible_in_production = Env::from_pairs([
            ("DATABASE_URL", "postgres://x/y"),
            ("ACCESS_POLICY", "compatible"),
        ]);
        let err = Config::from_env(&compatible_in_production)
            .expect_err("compatible in production")
            .to_string();
        assert!(err.contains("ACCESS_POLICY"), "{err}");
        assert!(err.contains("ALLOW_COMPATIBLE_IN_PRODUCTION"), "{err}");
        let allowed = compatible_in_production.set("ALLOW_COMPATIBLE_IN_PRODUCTION", "true");
        assert_eq!(
            Config::from_env(&allowed).unwrap().policy,
            Policy::Compatible
        );
    }
}
