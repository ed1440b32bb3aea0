//! The bookings service's configuration, read once from the environment. Each variable is
//! declared where it is read (`Config::read`): its name, default and docs row are that one call.

use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_events::{PublisherConfig, Tuning};
use flightmesh_runtime::caller::{self, Policy};
use flightmesh_runtime::config::{ENVIRONMENT, Environment, Reader, Var};
use flightmesh_runtime::host::HostConfig;
use flightmesh_runtime::peers;

const ACCESS_POLICY: Var = caller::ACCESS_POLICY.doc(
    "`production` (a caller sees, lists and cancels only the bookings made under its user id; admin: all; the event log is admin-only; no forwarded identity: refused) or `compatible` (all open, as the old clients expect); the same word as the gateway's",
);

const SHARED_CONNECTIONS: Var = Var::new("DATABASE_SHARED_CONNECTIONS", "8").doc(
    "Connections that concurrent bookings share, their statements pipelined (ADR 0014); besides the pool, which serves everything else. A replica opens up to this + `DATABASE_MAX_CONNECTIONS` + 1",
);

/// Everything the bookings service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Connections the booking statements share, pipelined; the pool serves everything else.
    pub shared_connections: usize,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Where the flights service is.
    pub flights_url: String,
    /// Deadline per flight lookup.
    pub flights_timeout: Duration,
    /// Flight snapshot reuse.
    pub flight_cache_ttl: Duration,
    /// The outbox: RabbitMQ, the exchange events go to, the relay, published rows' retention.
    pub publisher: PublisherConfig,
    /// Idempotency-Key retention.
    pub idempotency_retention: Duration,
    /// Who may see and change which bookings.
    pub policy: Policy,
}

impl Config {
    /// Reads every variable of the service, in the order of its docs.
    ///
    /// Long because it is the service's list of variables, one declaration each, in the order of
    /// the README table made from it.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let config = Self {
            host: HostConfig::read(r, peers::BOOKINGS.grpc_listen, peers::BOOKINGS.admin_listen),
            db: DbConfig::read(r),
            shared_connections: r.get(SHARED_CONNECTIONS),
            migrate_on_start: r.get(flightmesh_db::MIGRATE_ON_START),
            flights_url: r.get(peers::FLIGHTS.url("gRPC URL of the flights service")),
            flights_timeout: r.duration(Var::new("FLIGHTS_TIMEOUT", "2s").doc(
                "Deadline of one flight lookup (retried up to 3 times while flights is unavailable)",
            )),
            flight_cache_ttl: r.duration(Var::new("FLIGHT_CACHE_TTL", "2s").doc(
                "How long a fetched flight is reused for pricing (`0s` disables the cache)",
            )),
            publisher: PublisherConfig::read(
                r,
                flightmesh_events::amqp::BOOKINGS_EXCHANGE
                    .doc("Topic exchange booking events are published to"),
                Tuning::FromEnvironment,
                "How long published outbox rows are kept before the relay's process deletes them (the events feed reaches back this far)",
            ),
            idempotency_retention: r.duration(Var::new("IDEMPOTENCY_RETENTION", "48h").doc(
                "How long Idempotency-Keys are remembered (the contract asks for at least 24h)",
            )),
            policy: r.get(ACCESS_POLICY),
        };
        r.ensure(
            &SHARED_CONNECTIONS,
            config.shared_connections > 0,
            "must be at least 1",
        );
        let environment: Environment = r.get(ENVIRONMENT.doc(
            "`production` or `development`; production refuses `ACCESS_POLICY=compatible` unless `ALLOW_COMPATIBLE_IN_PRODUCTION=true`, as the gateway does",
        ));
        let allow_compatible: bool = r.get(caller::ALLOW_COMPATIBLE_IN_PRODUCTION.doc(
            "Lets `ACCESS_POLICY=compatible` start with `ENVIRONMENT=production` (logged as a warning at start)",
        ));
        // The same guard as the gateway's: bookings enforces ownership itself, so an open
        // bookings behind a production gateway must be a deliberate choice too.
        if environment == Environment::Production && config.policy == Policy::Compatible {
            r.ensure(
                &ACCESS_POLICY,
                allow_compatible,
                "is refused with ENVIRONMENT=production unless ALLOW_COMPATIBLE_IN_PRODUCTION=true",
            );
            if allow_compatible {
                tracing::warn!(
                    "ACCESS_POLICY=compatible in production (ALLOW_COMPATIBLE_IN_PRODUCTION=true): every booking is open to anonymous callers"
                );
            }
        }
        config
    }
}
flightmesh_runtime::env_config!(Config);

#[cfg(test)]
mod tests {
    use super::*;
    use flightmesh_runtime::config::Env;

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
