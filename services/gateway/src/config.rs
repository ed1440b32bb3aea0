//! The gateway's configuration, read once from the environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::DRAIN_DELAY;

use crate::auth::{self, TokenConfig};
use crate::client_addr::TrustedProxies;
use crate::policy::Policy;
use crate::ratelimit::{Class, Limit};
use crate::secrets;

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
const STREAM_HEARTBEAT: Var = Var::new(
    "STREAM_HEARTBEAT",
    "15s",
    "Interval of the comment lines that keep an idle Server-Sent Events answer open through proxies (> 0)",
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
    "`production` or `development`; production refuses weak or example signing keys, the compatible policy (see `ALLOW_COMPATIBLE_IN_PRODUCTION`) and passwords under 8 characters",
);
const MIGRATE_ON_START: Var = Var::new(
    "MIGRATE_ON_START",
    "true",
    "Apply pending migrations of the `identity` schema at start",
);
const JWT_SECRET: Var = Var::optional(
    "JWT_SECRET",
    "HS256 signing key of access tokens; production refuses example, `CHANGE-ME`, short (< 32) and low-entropy keys",
)
.secret();
const JWT_TTL: Var = Var::new(
    "JWT_TTL",
    "60m",
    "Lifetime of an access token (at most 24h)",
);
const ACCESS_POLICY: Var = Var::new(
    "ACCESS_POLICY",
    "production",
    "`production` (bookings and AI need a user; catalog writes, dead letters and rebuild need admin) or `compatible` (all open, as the old clients expect)",
);
const ADMIN_EMAIL: Var = Var::optional(
    "ADMIN_EMAIL",
    "Creates this user as admin at start with `ADMIN_PASSWORD`, or takes the existing account over (its password is replaced, its earlier tokens revoked)",
);
const ADMIN_PASSWORD: Var = Var::optional(
    "ADMIN_PASSWORD",
    "Password of the bootstrap admin, set on every start (the account is taken over if it exists)",
)
.secret();

// Identity hardening (ADR 0011): tokens, the user check, password hashing.
const JWT_KEY_ID: Var = Var::new(
    "JWT_KEY_ID",
    "k1",
    "`kid` of the current signing key (`JWT_SECRET`); change it with the key when rotating",
);
const JWT_PREVIOUS_KEYS: Var = Var::optional(
    "JWT_PREVIOUS_KEYS",
    "Rotated-out keys still accepted for verification, `kid:secret,kid:secret` (same rules as `JWT_SECRET` in production)",
)
.secret();
const JWT_ISSUER: Var = Var::new(
    "JWT_ISSUER",
    "flightmesh-gateway",
    "`iss` of issued tokens, required of presented ones",
);
const JWT_AUDIENCE: Var = Var::new(
    "JWT_AUDIENCE",
    "flightmesh",
    "`aud` of issued tokens, required of presented ones",
);
const USER_CHECK_INTERVAL: Var = Var::new(
    "USER_CHECK_INTERVAL",
    "30s",
    "How long a user's state (active, role, token version) is cached per replica: the bound for a deactivation or role change to take effect (`0s`: every request; at most 5m)",
);
const USER_CHECK_CACHE_SIZE: Var = Var::new(
    "USER_CHECK_CACHE_SIZE",
    "10000",
    "Most users kept in the user check cache",
);
const ALLOW_COMPATIBLE_IN_PRODUCTION: Var = Var::new(
    "ALLOW_COMPATIBLE_IN_PRODUCTION",
    "false",
    "Lets `ACCESS_POLICY=compatible` start with `ENVIRONMENT=production` (refused otherwise; logged as a warning)",
);
const PASSWORD_MIN_LENGTH: Var = Var::optional(
    "PASSWORD_MIN_LENGTH",
    "Shortest password of a new account; unset: 8 (NIST 800-63B), or 6 with `ACCESS_POLICY=compatible` outside production; production refuses less than 8",
);
const PASSWORD_HASH_MEMORY_MIB: Var = Var::new(
    "PASSWORD_HASH_MEMORY_MIB",
    "128",
    "Memory budget for concurrent Argon2 work (19 MiB each); sizes `PASSWORD_HASH_CONCURRENCY` when that is unset",
);
const PASSWORD_HASH_CONCURRENCY: Var = Var::optional(
    "PASSWORD_HASH_CONCURRENCY",
    "Most concurrent password hashes and checks; beyond it login and register answer 503 with `Retry-After`. Unset: `PASSWORD_HASH_MEMORY_MIB / 19`, at least 1",
);

/// The longest accepted `JWT_TTL`.
pub const MAX_JWT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest accepted `USER_CHECK_INTERVAL`.
pub const MAX_USER_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// NIST 800-63B's minimum for memorized secrets, the least production accepts.
pub const PRODUCTION_MIN_PASSWORD_LENGTH: usize = 8;
/// The contract's minimum (the old clients).
pub const COMPATIBLE_MIN_PASSWORD_LENGTH: usize = 6;
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
    /// Deadline of AI calls (of the whole stream, for a streamed route).
    pub ai_request_timeout: Duration,
    /// Interval of SSE heartbeat comments.
    pub stream_heartbeat: Duration,
    /// Body size limit in bytes.
    pub max_body_bytes: usize,
    /// Unary upstream calls in flight at most, and the wait for a slot.
    pub shed: flightmesh_runtime::shed::ShedConfig,
    /// CORS origins.
    pub cors_allowed_origins: Vec<String>,
    /// NOT_READY time before the listener closes on shutdown.
    pub drain_delay: Duration,
    /// PostgreSQL (schema `identity`).
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Who may call what.
    pub policy: Policy,
    /// The bootstrap admin.
    pub admin: Option<(String, Secret<String>)>,
    /// Tokens, the user check and password hashing.
    pub identity: IdentityConfig,
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

/// Tokens, the user check and password hashing (ADR 0011).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Signing and verification keys, issuer, audience, lifetime.
    pub tokens: TokenConfig,
    /// How long a user's state is cached.
    pub user_check_interval: Duration,
    /// Most users cached.
    pub user_check_cache_size: usize,
    /// Shortest password of a new account.
    pub password_min_length: usize,
    /// Most concurrent Argon2 hashes.
    pub password_hash_concurrency: usize,
    /// `ACCESS_POLICY=compatible` was allowed in production (logged at start).
    pub compatible_in_production: bool,
}

impl IdentityConfig {
    /// Deliberate weakenings, logged as warnings at every start.
    #[must_use]
    pub fn start_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.compatible_in_production {
            warnings.push(
                "ACCESS_POLICY=compatible in production (ALLOW_COMPATIBLE_IN_PRODUCTION=true): bookings and AI are open to anonymous callers",
            );
        }
        warnings
    }
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
            STREAM_HEARTBEAT,
            MAX_BODY_BYTES,
            CORS_ALLOWED_ORIGINS,
            DRAIN_DELAY,
        ];
        vars.extend(flightmesh_runtime::shed::ShedConfig::VARS);
        vars.extend_from_slice(DbConfig::VARS);
        vars.extend([
            MIGRATE_ON_START,
            ENVIRONMENT,
            JWT_SECRET,
            JWT_TTL,
            ACCESS_POLICY,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            JWT_KEY_ID,
            JWT_PREVIOUS_KEYS,
            JWT_ISSUER,
            JWT_AUDIENCE,
            USER_CHECK_INTERVAL,
            USER_CHECK_CACHE_SIZE,
            ALLOW_COMPATIBLE_IN_PRODUCTION,
            PASSWORD_MIN_LENGTH,
            PASSWORD_HASH_MEMORY_MIB,
            PASSWORD_HASH_CONCURRENCY,
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
        let policy: Policy = env.get(&ACCESS_POLICY)?;
        let identity = identity_config(env, production, policy)?;
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
        let stream_heartbeat = env.get::<Dur>(&STREAM_HEARTBEAT)?.0;
        for (var, value) in [
            (&HEADER_READ_TIMEOUT, header_read_timeout),
            (&BODY_READ_TIMEOUT, body_read_timeout),
            (&STREAM_HEARTBEAT, stream_heartbeat),
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
            stream_heartbeat,
            admin_addr: env.get(&ADMIN_ADDR)?,
            public_metrics: env.get_opt(&PUBLIC_METRICS)?.unwrap_or(!production),
            api_docs: env.get(&API_DOCS)?,
            http_addr: env.get(&HTTP_ADDR)?,
            upstreams,
            request_timeout: env.get::<Dur>(&REQUEST_TIMEOUT)?.0,
            ai_request_timeout: env.get::<Dur>(&AI_REQUEST_TIMEOUT)?.0,
            max_body_bytes,
            shed: flightmesh_runtime::shed::ShedConfig::from_env(env)?,
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
            policy,
            admin: match (
                env.get_opt::<String>(&ADMIN_EMAIL)?,
                env.get_opt::<Secret<String>>(&ADMIN_PASSWORD)?,
            ) {
                (Some(_), Some(password))
                    if production
                        && (password.expose().chars().count() < identity.password_min_length
                            || secrets::is_placeholder(password.expose())) =>
                {
                    return Err(ConfigError::invalid(
                        &ADMIN_PASSWORD,
                        "",
                        format!(
                            "production needs an admin password of at least {} characters that is not an example",
                            identity.password_min_length
                        ),
                    ));
                }
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
            identity,
        })
    }
}

/// A signing key under the production rules ([`secrets::weakness`]); the error names `var` (and
/// the key's id for a previous key), never the value.
fn check_key(var: &Var, kid: Option<&str>, secret: &str) -> Result<(), ConfigError> {
    match secrets::weakness(secret) {
        Some(why) => Err(ConfigError::invalid(
            var,
            "",
            match kid {
                Some(kid) => format!("the key of kid {kid} {why}"),
                None => why.to_owned(),
            },
        )),
        None => Ok(()),
    }
}

/// `kid:secret,kid:secret`.
fn previous_keys(text: &str) -> Result<Vec<(String, Secret<String>)>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once(':') {
            Some((kid, secret)) if !kid.trim().is_empty() && !secret.is_empty() => {
                Ok((kid.trim().to_owned(), Secret::new(secret.to_owned())))
            }
            _ => Err(ConfigError::invalid(
                &JWT_PREVIOUS_KEYS,
                "",
                "expected kid:secret entries separated by commas",
            )),
        })
        .collect()
}

fn identity_config(
    env: &Env,
    production: bool,
    policy: Policy,
) -> Result<IdentityConfig, ConfigError> {
    let secret: Secret<String> = match env.get_opt::<Secret<String>>(&JWT_SECRET)? {
        Some(secret) => {
            if production {
                check_key(&JWT_SECRET, None, secret.expose())?;
            }
            secret
        }
        None if production => {
            return Err(ConfigError::Missing {
                name: JWT_SECRET.name.to_owned(),
            });
        }
        None => Secret::new(DEVELOPMENT_SECRET.to_owned()),
    };
    let key_id: String = env.get(&JWT_KEY_ID)?;
    if key_id.is_empty() || key_id.len() > 64 || key_id.contains([':', ',', ' ']) {
        return Err(ConfigError::invalid(
            &JWT_KEY_ID,
            &key_id,
            "1 to 64 characters, no `:`, `,` or spaces",
        ));
    }
    let previous = match env.raw(&JWT_PREVIOUS_KEYS) {
        Some(text) => previous_keys(&text)?,
        None => Vec::new(),
    };
    let mut kids = std::collections::HashSet::from([key_id.as_str()]);
    for (kid, secret) in &previous {
        if !kids.insert(kid) {
            return Err(ConfigError::invalid(
                &JWT_PREVIOUS_KEYS,
                "",
                format!("kid {kid} appears twice (or is JWT_KEY_ID)"),
            ));
        }
        if production {
            check_key(&JWT_PREVIOUS_KEYS, Some(kid), secret.expose())?;
        }
    }
    let ttl = env.get::<Dur>(&JWT_TTL)?.0;
    if ttl.is_zero() || ttl > MAX_JWT_TTL {
        return Err(ConfigError::invalid(
            &JWT_TTL,
            &env.raw(&JWT_TTL).unwrap_or_default(),
            "must be between 1s and 24h",
        ));
    }
    let compatible_in_production = production && policy == Policy::Compatible;
    if compatible_in_production && !env.get::<bool>(&ALLOW_COMPATIBLE_IN_PRODUCTION)? {
        return Err(ConfigError::invalid(
            &ACCESS_POLICY,
            "compatible",
            "ENVIRONMENT=production refuses the compatible policy unless ALLOW_COMPATIBLE_IN_PRODUCTION=true",
        ));
    }
    let user_check_interval = env.get::<Dur>(&USER_CHECK_INTERVAL)?.0;
    if user_check_interval > MAX_USER_CHECK_INTERVAL {
        return Err(ConfigError::invalid(
            &USER_CHECK_INTERVAL,
            &env.raw(&USER_CHECK_INTERVAL).unwrap_or_default(),
            "at most 5m",
        ));
    }
    let user_check_cache_size: usize = env.get(&USER_CHECK_CACHE_SIZE)?;
    if user_check_cache_size == 0 {
        return Err(ConfigError::invalid(
            &USER_CHECK_CACHE_SIZE,
            "0",
            "must be positive",
        ));
    }
    let password_min_length = match env.get_opt::<usize>(&PASSWORD_MIN_LENGTH)? {
        Some(length)
            if !(COMPATIBLE_MIN_PASSWORD_LENGTH..=1024).contains(&length)
                || (production && length < PRODUCTION_MIN_PASSWORD_LENGTH) =>
        {
            return Err(ConfigError::invalid(
                &PASSWORD_MIN_LENGTH,
                &length.to_string(),
                "must be between 6 and 1024, and at least 8 in production (NIST 800-63B)",
            ));
        }
        Some(length) => length,
        None if policy == Policy::Compatible && !production => COMPATIBLE_MIN_PASSWORD_LENGTH,
        None => PRODUCTION_MIN_PASSWORD_LENGTH,
    };
    let memory_mib: u64 = env.get(&PASSWORD_HASH_MEMORY_MIB)?;
    let password_hash_concurrency = match env.get_opt::<usize>(&PASSWORD_HASH_CONCURRENCY)? {
        Some(0) => {
            return Err(ConfigError::invalid(
                &PASSWORD_HASH_CONCURRENCY,
                "0",
                "must be positive",
            ));
        }
        Some(permits) => permits,
        None => usize::try_from((memory_mib * 1024 * 1024 / auth::ARGON2_MEMORY_BYTES).max(1))
            .unwrap_or(1),
    };
    Ok(IdentityConfig {
        tokens: TokenConfig {
            key_id,
            secret,
            previous,
            issuer: env.get(&JWT_ISSUER)?,
            audience: env.get(&JWT_AUDIENCE)?,
            ttl,
        },
        user_check_interval,
        user_check_cache_size,
        password_min_length,
        password_hash_concurrency,
        compatible_in_production,
    })
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

    /// A key that passes the production rules, made at run time so that no literal strong key
    /// sits in the repository (the repository scan below would have to refuse it).
    fn strong_key() -> String {
        (0..40u32)
            .map(|i| {
                let alphabet = b"Hq7ZpK2vN9xRm4TbW6cYf8LgS3dJ5aUe";
                char::from(alphabet[((i * 37 + i * i * 11 + 5) % 32) as usize])
            })
            .collect()
    }

    fn production_env() -> Env {
        Env::from_pairs([("ENVIRONMENT", "production")])
    }

    fn production(secret: Option<&str>) -> Result<Config, ConfigError> {
        let env = production_env();
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
        let strong = strong_key();
        assert_eq!(secrets::weakness(&strong), None, "{strong}");
        let config = production(Some(&strong)).unwrap();
        assert_eq!(config.identity.tokens.secret.expose(), &strong);
        assert_eq!(config.identity.password_min_length, 8);
        assert!(!config.identity.compatible_in_production);
    }

    #[test]
    fn development_signs_with_the_development_key() {
        let config = Config::from_env(&Env::from_pairs([("ENVIRONMENT", "development")])).unwrap();
        assert_eq!(config.identity.tokens.secret.expose(), DEVELOPMENT_SECRET);
        assert_eq!(
            config.policy,
            Policy::Production,
            "the policy is separate from the environment"
        );
    }

    /// Refuses `secret` both as `JWT_SECRET` and as a previous key, naming the variable and never
    /// echoing the value.
    fn assert_refused_in_production(secret: &str, origin: &str) {
        for (var, value) in [
            ("JWT_SECRET", secret.to_owned()),
            ("JWT_PREVIOUS_KEYS", format!("old:{secret}")),
        ] {
            let mut env = production_env().set(var, value);
            if var != "JWT_SECRET" {
                env = env.set("JWT_SECRET", strong_key());
            }
            let err = Config::from_env(&env)
                .err()
                .unwrap_or_else(|| {
                    panic!("{origin}: {secret:?} starts a production gateway as {var}")
                })
                .to_string();
            assert!(err.contains(var), "{origin}: {err}");
            assert!(
                secret.len() < 4 || !err.contains(secret),
                "{origin}: the secret {secret:?} must not be echoed: {err}"
            );
        }
    }

    #[test]
    fn production_refuses_every_known_example_secret() {
        for secret in secrets::KNOWN_EXAMPLE_SECRETS {
            assert_refused_in_production(secret, "KNOWN_EXAMPLE_SECRETS");
        }
        for secret in [
            "change-me-0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert_refused_in_production(secret, "rule");
        }
    }

    /// Values assigned to JWT signing keys in `text`: `JWT_SECRET: v`, `JWT_SECRET=v`,
    /// `"JWT_SECRET": "v"`, `("JWT_SECRET", "v")`, `JWT_PREVIOUS_KEYS=kid:v,…`. References
    /// (`$X`, `${X}`, `{{ … }}`), empty values and, in code, anything but a string literal are
    /// not secrets.
    fn assigned_keys(text: &str, code: bool) -> Vec<String> {
        let mut found = Vec::new();
        for name in ["JWT_SECRET", "JWT_PREVIOUS_KEYS"] {
            for (at, _) in text.match_indices(name) {
                let rest = &text[at + name.len()..];
                let line = rest.lines().next().unwrap_or("");
                let after_name = line.trim_start_matches(['"', '\'', ']', '`']);
                let Some(after_sep) = after_name
                    .trim_start()
                    .strip_prefix([':', '=', ','])
                    .map(str::trim_start)
                else {
                    continue;
                };
                let value = if let Some(quoted) = after_sep.strip_prefix(['"', '\'']) {
                    let quote = after_sep.as_bytes()[0] as char;
                    quoted.split(quote).next().unwrap_or("").to_owned()
                } else if code {
                    continue;
                } else {
                    after_sep
                        .split([' ', '#', '\t'])
                        .next()
                        .unwrap_or("")
                        .to_owned()
                };
                // Another variable's name (a list of names, not an assignment).
                let a_name = value.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                if value.is_empty()
                    || a_name
                    || value.starts_with('$')
                    || value.contains("{{")
                    || value.starts_with('{')
                    || value.starts_with('[')
                    || value.starts_with('|')
                    || value.starts_with('>')
                {
                    continue;
                }
                if name == "JWT_PREVIOUS_KEYS" {
                    found.extend(
                        value
                            .split(',')
                            .filter_map(|entry| entry.split_once(':').map(|(_, s)| s.to_owned())),
                    );
                } else {
                    found.push(value);
                }
            }
        }
        found
    }

    fn repository_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | "node_modules") {
                    repository_files(&path, out);
                }
            } else if [
                ".yaml", ".yml", ".env", ".sh", ".md", ".rs", ".py", ".toml", ".json", ".tpl",
            ]
            .iter()
            .any(|ext| name.ends_with(ext))
                || name.starts_with(".env")
            {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_signing_key_written_in_the_repository_is_refused_in_production() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        repository_files(&root, &mut files);
        assert!(files.len() > 50, "the repository was found at {root:?}");
        let mut sources = std::collections::BTreeSet::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let code = file
                .extension()
                .is_some_and(|ext| ext == "rs" || ext == "py");
            for secret in assigned_keys(&text, code) {
                assert_refused_in_production(&secret, &file.display().to_string());
                let relative = file.strip_prefix(&root).unwrap_or(&file);
                sources.insert(relative.to_string_lossy().into_owned());
            }
        }
        for expected in ["k8s/secret.example.yaml", "compose.yaml"] {
            assert!(
                sources.contains(expected),
                "no key found in {expected}: is the scan broken? {sources:?}"
            );
        }
        // The scanner itself.
        assert_eq!(
            assigned_keys(
                "  JWT_SECRET: abc # c\n- name: JWT_SECRET\nJWT_SECRET=${X}",
                false
            ),
            ["abc"]
        );
        assert_eq!(
            assigned_keys(
                r#"env.set("JWT_SECRET", value); ("JWT_SECRET", "lit")"#,
                true
            ),
            ["lit"]
        );
        assert_eq!(
            assigned_keys("JWT_PREVIOUS_KEYS=k1:aaa,k2:bbb", false),
            ["aaa", "bbb"]
        );
    }

    #[test]
    fn tokens_need_a_bounded_lifetime_and_distinct_key_ids() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        for ttl in ["25h", "0s"] {
            let err = Config::from_env(&dev.clone().set("JWT_TTL", ttl))
                .unwrap_err()
                .to_string();
            assert!(err.contains("JWT_TTL"), "{err}");
        }
        assert_eq!(
            Config::from_env(&dev.clone().set("JWT_TTL", "24h"))
                .unwrap()
                .identity
                .tokens
                .ttl,
            MAX_JWT_TTL
        );
        let err = Config::from_env(&dev.clone().set("JWT_PREVIOUS_KEYS", "k1:other"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_PREVIOUS_KEYS") && err.contains("k1"),
            "{err}"
        );
        let err = Config::from_env(&dev.clone().set("JWT_PREVIOUS_KEYS", "no-colon"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_PREVIOUS_KEYS") && !err.contains("no-colon"),
            "{err}"
        );
        let config = Config::from_env(
            &dev.set("JWT_KEY_ID", "k2")
                .set("JWT_PREVIOUS_KEYS", "k1:one, k0:two"),
        )
        .unwrap();
        let kids: Vec<&str> = config
            .identity
            .tokens
            .previous
            .iter()
            .map(|(kid, _)| kid.as_str())
            .collect();
        assert_eq!(kids, ["k1", "k0"]);
    }

    #[test]
    fn compatible_policy_in_production_needs_an_explicit_allowance() {
        let env = production_env()
            .set("JWT_SECRET", strong_key())
            .set("ACCESS_POLICY", "compatible");
        let err = Config::from_env(&env).unwrap_err().to_string();
        assert!(
            err.contains("ACCESS_POLICY") && err.contains("ALLOW_COMPATIBLE_IN_PRODUCTION"),
            "{err}"
        );
        let config = Config::from_env(&env.set("ALLOW_COMPATIBLE_IN_PRODUCTION", "true")).unwrap();
        assert!(config.identity.compatible_in_production);
        assert!(
            config.identity.start_warnings()[0].contains("ALLOW_COMPATIBLE_IN_PRODUCTION"),
            "the allowance is logged at start"
        );
        let development = Config::from_env(&Env::from_pairs([
            ("ENVIRONMENT", "development"),
            ("ACCESS_POLICY", "compatible"),
        ]))
        .unwrap();
        assert!(development.identity.start_warnings().is_empty());
        assert_eq!(config.policy, Policy::Compatible);
        assert_eq!(
            config.identity.password_min_length, 8,
            "production keeps NIST's minimum even under the compatible policy"
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
    fn password_rules_follow_the_policy_and_production_refuses_less_than_eight() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        let length = |env: Env| Config::from_env(&env).map(|c| c.identity.password_min_length);
        assert_eq!(length(dev.clone()), Ok(8));
        assert_eq!(
            length(dev.clone().set("ACCESS_POLICY", "compatible")),
            Ok(6)
        );
        assert_eq!(length(dev.clone().set("PASSWORD_MIN_LENGTH", "12")), Ok(12));
        assert!(length(dev.clone().set("PASSWORD_MIN_LENGTH", "4")).is_err());
        let err = length(
            production_env()
                .set("JWT_SECRET", strong_key())
                .set("PASSWORD_MIN_LENGTH", "6"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PASSWORD_MIN_LENGTH"), "{err}");

        let admin = |password: &str| {
            Config::from_env(
                &production_env()
                    .set("JWT_SECRET", strong_key())
                    .set("ADMIN_EMAIL", "admin@example.com")
                    .set("ADMIN_PASSWORD", password),
            )
        };
        for weak in ["short", "CHANGE-ME-admin-password"] {
            let err = admin(weak).unwrap_err().to_string();
            assert!(
                err.contains("ADMIN_PASSWORD") && !err.contains(weak),
                "{err}"
            );
        }
        assert!(admin("a long enough admin password").is_ok());
    }

    #[test]
    fn hashing_concurrency_derives_from_the_memory_budget() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        let permits =
            |env: Env| Config::from_env(&env).map(|c| c.identity.password_hash_concurrency);
        assert_eq!(permits(dev.clone()), Ok(6), "128 MiB / 19 MiB");
        assert_eq!(
            permits(dev.clone().set("PASSWORD_HASH_MEMORY_MIB", "10")),
            Ok(1)
        );
        assert_eq!(
            permits(dev.clone().set("PASSWORD_HASH_CONCURRENCY", "3")),
            Ok(3)
        );
        assert!(permits(dev.set("PASSWORD_HASH_CONCURRENCY", "0")).is_err());
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
