//! The gateway's configuration, read once from the environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::DRAIN_DELAY;

use crate::client_addr::TrustedProxies;
use crate::policy::Policy;
use crate::ratelimit::{Class, Limit};

const HTTP_ADDR: Var = Var::new("HTTP_ADDR", "0.0.0.0:8080", "REST listen address");
const FLIGHTS_URL: Var = Var::new(
    "FLIGHTS_URL",
    "http://127.0.0.1:50051",
    "gRPC URL of the flights service",
);
const BOOKINGS_URL: Var = Var::new(
    "BOOKINGS_URL",
    "http://127.0.0.1:50052",
    "gRPC URL of the bookings service",
);
const STATS_URL: Var = Var::new(
    "STATS_URL",
    "http://127.0.0.1:50053",
    "gRPC URL of the stats-worker service",
);
const AI_URL: Var = Var::new(
    "AI_URL",
    "http://127.0.0.1:50054",
    "gRPC URL of the ai-agent service",
);
const REQUEST_TIMEOUT: Var = Var::new(
    "REQUEST_TIMEOUT",
    "10s",
    "Deadline of an upstream call (504 when exceeded)",
);
const AI_REQUEST_TIMEOUT: Var = Var::new(
    "AI_REQUEST_TIMEOUT",
    "60s",
    "Deadline of an upstream call on `/api/v1/ai/*` (LLM answers are slow)",
);
const MAX_BODY_BYTES: Var = Var::new(
    "MAX_BODY_BYTES",
    "65536",
    "Largest request body accepted (413 above)",
);
const CORS_ALLOWED_ORIGINS: Var = Var::new(
    "CORS_ALLOWED_ORIGINS",
    "http://localhost:3000,http://localhost:5173",
    "Comma-separated origins allowed by CORS (credentials allowed)",
);

const ENVIRONMENT: Var = Var::new(
    "ENVIRONMENT",
    "production",
    "`production` or `development`; production refuses to start without a real `JWT_SECRET`",
);
const MIGRATE_ON_START: Var = Var::new(
    "MIGRATE_ON_START",
    "true",
    "Apply pending migrations of the `identity` schema at start",
);
const JWT_SECRET: Var = Var::optional(
    "JWT_SECRET",
    "HS256 signing key of access tokens (at least 32 characters in production)",
)
.secret();
const JWT_TTL: Var = Var::new("JWT_TTL", "60m", "Lifetime of an access token");
const ACCESS_POLICY: Var = Var::new(
    "ACCESS_POLICY",
    "production",
    "`production` (bookings and AI need a user; catalog writes, dead letters and rebuild need admin) or `compatible` (all open, as the old clients expect)",
);
const ADMIN_EMAIL: Var = Var::optional(
    "ADMIN_EMAIL",
    "Creates (or promotes) this user as admin at start, with `ADMIN_PASSWORD`",
);
const ADMIN_PASSWORD: Var =
    Var::optional("ADMIN_PASSWORD", "Password of the bootstrap admin").secret();
const RATE_LIMIT_DEFAULT: Var = Var::new(
    "RATE_LIMIT_DEFAULT",
    "600/60s",
    "Requests per client per window on `/api/v1/*`",
);
const RATE_LIMIT_AI: Var = Var::new(
    "RATE_LIMIT_AI",
    "20/60s",
    "Requests per client per window on `/api/v1/ai/*`",
);
const RATE_LIMIT_AUTH: Var = Var::new(
    "RATE_LIMIT_AUTH",
    "30/60s",
    "Requests per client per window on login and register",
);
const RATE_LIMIT_STORE: Var = Var::new(
    "RATE_LIMIT_STORE",
    "memory",
    "`memory` (per replica) or `redis` (one budget shared by every replica)",
);
const REDIS_URL: Var = Var::new(
    "REDIS_URL",
    "redis://127.0.0.1:6379",
    "Redis URL (shared rate limits)",
)
.secret();
const REDIS_KEY_PREFIX: Var = Var::new("REDIS_KEY_PREFIX", "", "Prepended to the rate limit keys");

// The edge: client addresses, limiter memory, slow clients, what the public port shows.
const TRUSTED_PROXIES: Var = Var::new(
    "TRUSTED_PROXIES",
    "",
    "Comma-separated networks of the proxies in front of the gateway (`10.0.0.0/8,fd00::/8`); the client is the right-most `X-Forwarded-For` hop outside them, and only when the peer is one of them. Empty: the peer is the client",
);
/// Removed: it trusted the left-most `X-Forwarded-For` hop, which the client writes.
const TRUST_FORWARDED_FOR: Var = Var::optional(
    "TRUST_FORWARDED_FOR",
    "Removed; refused when true (use `TRUSTED_PROXIES`)",
);
const RATE_LIMIT_MEMORY_CLIENTS: Var = Var::new(
    "RATE_LIMIT_MEMORY_CLIENTS",
    "100000",
    "Most (class, client) windows the in-memory limiter keeps (also the auth fallback of the Redis store); the oldest are evicted beyond it",
);
const HEADER_READ_TIMEOUT: Var = Var::new(
    "HEADER_READ_TIMEOUT",
    "65s",
    "Time a connection gets to send a request's headers, idle keep-alive time included (the connection is closed past it); above the 60 s upstream keep-alive of common proxies",
);
const BODY_READ_TIMEOUT: Var = Var::new(
    "BODY_READ_TIMEOUT",
    "30s",
    "Time a request gets to send its body (408 and the connection closed past it)",
);
const ADMIN_ADDR: Var = Var::new(
    "ADMIN_ADDR",
    "0.0.0.0:8081",
    "Admin HTTP listen address (`/livez`, `/readyz`, `/metrics`)",
);
const PUBLIC_METRICS: Var = Var::optional(
    "PUBLIC_METRICS",
    "Also serve `/metrics` on the public port (default: true under `ENVIRONMENT=development`, false under `production`)",
);
const API_DOCS: Var = Var::new(
    "API_DOCS",
    "true",
    "Serve `/docs` and `/openapi.json` (false: 404)",
);

/// The signing key used when nothing is configured, in development only.
pub const DEVELOPMENT_SECRET: &str = "flightmesh-development-secret-do-not-use-in-production";

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub http_addr: SocketAddr,
    /// gRPC URL per mesh service (`flights`, `bookings`, `stats`, `ai`), keyed by the proto
    /// package's domain (`flightmesh.<domain>.v1`).
    pub upstreams: BTreeMap<String, String>,
    /// Deadline of ordinary upstream calls.
    pub request_timeout: Duration,
    /// Deadline of AI calls.
    pub ai_request_timeout: Duration,
    /// Body size limit in bytes.
    pub max_body_bytes: usize,
    /// CORS origins.
    pub cors_allowed_origins: Vec<String>,
    /// NOT_READY time before the listener closes on shutdown.
    pub drain_delay: Duration,
    /// PostgreSQL (schema `identity`).
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Token signing key.
    pub jwt_secret: Secret<String>,
    /// Token lifetime.
    pub jwt_ttl: Duration,
    /// Who may call what.
    pub policy: Policy,
    /// The bootstrap admin.
    pub admin: Option<(String, Secret<String>)>,
    /// Rate limits by route class.
    pub rate_limits: HashMap<Class, Limit>,
    /// Redis URL when the limits are shared; `None` keeps them in memory.
    pub rate_limit_redis: Option<Secret<String>>,
    /// Key prefix in Redis.
    pub redis_key_prefix: String,
    /// Proxies whose `X-Forwarded-For` hops are believed.
    pub trusted_proxies: TrustedProxies,
    /// Cap of the in-memory limiter's map.
    pub rate_limit_memory_clients: usize,
    /// Deadline of a request's headers (and of an idle keep-alive connection).
    pub header_read_timeout: Duration,
    /// Deadline of a request's body.
    pub body_read_timeout: Duration,
    /// Admin HTTP address (`/livez`, `/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    /// `/metrics` on the public port too.
    pub public_metrics: bool,
    /// `/docs` and `/openapi.json` served.
    pub api_docs: bool,
}

impl Config {
    /// Every variable the gateway reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = vec![
            HTTP_ADDR,
            FLIGHTS_URL,
            BOOKINGS_URL,
            STATS_URL,
            AI_URL,
            REQUEST_TIMEOUT,
            AI_REQUEST_TIMEOUT,
            MAX_BODY_BYTES,
            CORS_ALLOWED_ORIGINS,
            DRAIN_DELAY,
        ];
        vars.extend_from_slice(DbConfig::VARS);
        vars.extend([
            MIGRATE_ON_START,
            ENVIRONMENT,
            JWT_SECRET,
            JWT_TTL,
            ACCESS_POLICY,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            RATE_LIMIT_DEFAULT,
            RATE_LIMIT_AI,
            RATE_LIMIT_AUTH,
            RATE_LIMIT_STORE,
            REDIS_URL,
            REDIS_KEY_PREFIX,
            TRUSTED_PROXIES,
            TRUST_FORWARDED_FOR,
            RATE_LIMIT_MEMORY_CLIENTS,
            HEADER_READ_TIMEOUT,
            BODY_READ_TIMEOUT,
            ADMIN_ADDR,
            PUBLIC_METRICS,
            API_DOCS,
        ]);
        vars
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut upstreams = BTreeMap::new();
        for (domain, var) in [
            ("flights", FLIGHTS_URL),
            ("bookings", BOOKINGS_URL),
            ("stats", STATS_URL),
            ("ai", AI_URL),
        ] {
            let url: String = env.get(&var)?;
            if !flightmesh_runtime::channel::is_upstream_url(&url) {
                return Err(ConfigError::invalid(
                    &var,
                    &url,
                    "must start with http://, https:// or dns:///",
                ));
            }
            upstreams.insert(domain.to_owned(), url);
        }
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
        let jwt_secret: Secret<String> = match env.get_opt::<Secret<String>>(&JWT_SECRET)? {
            Some(secret)
                if production
                    && (secret.expose().len() < 32 || secret.expose() == DEVELOPMENT_SECRET) =>
            {
                return Err(ConfigError::invalid(
                    &JWT_SECRET,
                    "",
                    "production needs a random secret of at least 32 characters",
                ));
            }
            Some(secret) => secret,
            None if production => {
                return Err(ConfigError::Missing {
                    name: JWT_SECRET.name.to_owned(),
                });
            }
            None => Secret::new(DEVELOPMENT_SECRET.to_owned()),
        };
        let max_body_bytes: usize = env.get(&MAX_BODY_BYTES)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                &MAX_BODY_BYTES,
                "0",
                "must be positive",
            ));
        }
        if env
            .get_opt::<bool>(&TRUST_FORWARDED_FOR)
            .map_err(|_| removed_trust_forwarded_for(env))?
            == Some(true)
        {
            return Err(removed_trust_forwarded_for(env));
        }
        let rate_limit_memory_clients: usize = env.get(&RATE_LIMIT_MEMORY_CLIENTS)?;
        if rate_limit_memory_clients == 0 {
            return Err(ConfigError::invalid(
                &RATE_LIMIT_MEMORY_CLIENTS,
                "0",
                "must be positive",
            ));
        }
        let header_read_timeout = env.get::<Dur>(&HEADER_READ_TIMEOUT)?.0;
        let body_read_timeout = env.get::<Dur>(&BODY_READ_TIMEOUT)?.0;
        for (var, value) in [
            (&HEADER_READ_TIMEOUT, header_read_timeout),
            (&BODY_READ_TIMEOUT, body_read_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(var, "0s", "must be positive"));
            }
        }
        Ok(Self {
            trusted_proxies: env.get(&TRUSTED_PROXIES)?,
            rate_limit_memory_clients,
            header_read_timeout,
            body_read_timeout,
            admin_addr: env.get(&ADMIN_ADDR)?,
            public_metrics: env.get_opt(&PUBLIC_METRICS)?.unwrap_or(!production),
            api_docs: env.get(&API_DOCS)?,
            http_addr: env.get(&HTTP_ADDR)?,
            upstreams,
            request_timeout: env.get::<Dur>(&REQUEST_TIMEOUT)?.0,
            ai_request_timeout: env.get::<Dur>(&AI_REQUEST_TIMEOUT)?.0,
            max_body_bytes,
            cors_allowed_origins: env
                .get::<String>(&CORS_ALLOWED_ORIGINS)?
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            drain_delay: env.get::<Dur>(&DRAIN_DELAY)?.0,
            db: DbConfig::from_env(env)?,
            migrate_on_start: env.get(&MIGRATE_ON_START)?,
            jwt_secret,
            jwt_ttl: env.get::<Dur>(&JWT_TTL)?.0,
            policy: env.get(&ACCESS_POLICY)?,
            admin: match (
                env.get_opt::<String>(&ADMIN_EMAIL)?,
                env.get_opt::<Secret<String>>(&ADMIN_PASSWORD)?,
            ) {
                (Some(email), Some(password)) => Some((email, password)),
                (Some(_), None) => {
                    return Err(ConfigError::Missing {
                        name: ADMIN_PASSWORD.name.to_owned(),
                    });
                }
                _ => None,
            },
            rate_limits: HashMap::from([
                (Class::Default, env.get(&RATE_LIMIT_DEFAULT)?),
                (Class::Ai, env.get(&RATE_LIMIT_AI)?),
                (Class::Auth, env.get(&RATE_LIMIT_AUTH)?),
            ]),
            rate_limit_redis: match env.get::<String>(&RATE_LIMIT_STORE)?.as_str() {
                "memory" => None,
                "redis" => Some(env.get(&REDIS_URL)?),
                other => {
                    return Err(ConfigError::invalid(
                        &RATE_LIMIT_STORE,
                        other,
                        "expected memory or redis",
                    ));
                }
            },
            redis_key_prefix: env.raw(&REDIS_KEY_PREFIX).unwrap_or_default(),
        })
    }
}

/// The error for the removed `TRUST_FORWARDED_FOR`: it must not silently stop working.
fn removed_trust_forwarded_for(env: &Env) -> ConfigError {
    ConfigError::invalid(
        &TRUST_FORWARDED_FOR,
        &env.raw(&TRUST_FORWARDED_FOR).unwrap_or_default(),
        "was removed (it believed the left-most X-Forwarded-For hop, which the client writes): \
         list the networks of your proxies in TRUSTED_PROXIES instead, e.g. TRUSTED_PROXIES=10.0.0.0/8",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(secret: Option<&str>) -> Result<Config, ConfigError> {
        let env = Env::from_pairs([("ENVIRONMENT", "production")]);
        Config::from_env(&match secret {
            Some(secret) => env.set("JWT_SECRET", secret),
            None => env,
        })
    }

    #[test]
    fn production_refuses_a_missing_short_or_default_signing_key() {
        assert!(
            matches!(production(None), Err(ConfigError::Missing { name }) if name == "JWT_SECRET")
        );
        for weak in ["short", DEVELOPMENT_SECRET] {
            let err = production(Some(weak)).expect_err(weak).to_string();
            assert!(err.contains("JWT_SECRET"), "{err}");
            assert!(!err.contains(weak), "the secret must not be echoed: {err}");
        }
        let strong = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            production(Some(strong)).unwrap().jwt_secret.expose(),
            strong
        );
    }

    #[test]
    fn development_signs_with_the_development_key() {
        let config = Config::from_env(&Env::from_pairs([("ENVIRONMENT", "development")])).unwrap();
        assert_eq!(config.jwt_secret.expose(), DEVELOPMENT_SECRET);
        assert_eq!(
            config.policy,
            Policy::Production,
            "the policy is separate from the environment"
        );
    }

    fn development(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env = Env::from_pairs([("ENVIRONMENT", "development")]);
        for (name, value) in pairs {
            env = env.set(*name, *value);
        }
        Config::from_env(&env)
    }

    #[test]
    fn the_removed_trust_forwarded_for_is_refused_with_a_pointer_to_trusted_proxies() {
        for value in ["true", "1", "yes"] {
            let err = development(&[("TRUST_FORWARDED_FOR", value)])
                .expect_err(value)
                .to_string();
            assert!(err.contains("TRUST_FORWARDED_FOR"), "{err}");
            assert!(err.contains("TRUSTED_PROXIES"), "{err}");
        }
        let config = development(&[("TRUST_FORWARDED_FOR", "false")]).unwrap();
        assert!(config.trusted_proxies.is_empty(), "false changes nothing");
    }

    #[test]
    fn trusted_proxies_are_networks() {
        let config = development(&[("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")]).unwrap();
        assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(config.trusted_proxies.contains("fd00::1".parse().unwrap()));
        assert!(!config.trusted_proxies.contains("8.8.8.8".parse().unwrap()));
        let err = development(&[("TRUSTED_PROXIES", "10.0.0.0/33")])
            .expect_err("a bad prefix")
            .to_string();
        assert!(err.contains("TRUSTED_PROXIES"), "{err}");
        assert!(development(&[]).unwrap().trusted_proxies.is_empty());
    }

    #[test]
    fn public_metrics_follow_the_environment_unless_set() {
        // A key generated here, so that no secret of the repo is involved.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let production = Config::from_env(
            &Env::from_pairs([("ENVIRONMENT", "production")]).set("JWT_SECRET", &secret),
        )
        .unwrap();
        assert!(!production.public_metrics);
        assert!(production.api_docs);
        assert!(development(&[]).unwrap().public_metrics);
        assert!(
            !development(&[("PUBLIC_METRICS", "false")])
                .unwrap()
                .public_metrics
        );
        assert!(!development(&[("API_DOCS", "false")]).unwrap().api_docs);
        assert_eq!(
            development(&[]).unwrap().admin_addr,
            "0.0.0.0:8081".parse().unwrap()
        );
    }

    #[test]
    fn read_timeouts_and_the_limiter_cap_must_be_positive() {
        let config = development(&[]).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(65));
        assert_eq!(config.body_read_timeout, Duration::from_secs(30));
        assert_eq!(config.rate_limit_memory_clients, 100_000);
        for (name, zero) in [
            ("HEADER_READ_TIMEOUT", "0s"),
            ("BODY_READ_TIMEOUT", "0s"),
            ("RATE_LIMIT_MEMORY_CLIENTS", "0"),
        ] {
            let err = development(&[(name, zero)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
