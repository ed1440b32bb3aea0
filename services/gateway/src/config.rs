//! The gateway's configuration, read once from the environment. Each variable is declared
//! where it is read (`Config::read`, and [`access`] for who may call what): its name, default and
//! docs row are that one call.

mod access;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::{ConfigError, ENVIRONMENT, Environment, Reader, Secret, Var};
use flightmesh_runtime::host::DRAIN_DELAY;
use flightmesh_runtime::peers;
use flightmesh_runtime::shed::ShedConfig;

pub use access::{
    COMPATIBLE_MIN_PASSWORD_LENGTH, DEVELOPMENT_SECRET, IdentityConfig, MAX_JWT_TTL,
    MAX_USER_CHECK_INTERVAL, PRODUCTION_MIN_PASSWORD_LENGTH,
};

use crate::client_addr::TrustedProxies;
use crate::policy::Policy;
use crate::ratelimit::{Class, Limit};

/// Removed: it trusted the left-most `X-Forwarded-For` hop, which the client writes.
const TRUST_FORWARDED_FOR: Var =
    Var::optional("TRUST_FORWARDED_FOR").doc("Removed; refused when true (use `TRUSTED_PROXIES`)");

flightmesh_runtime::word_enum! {
    /// `RATE_LIMIT_STORE`: where the rate limit windows live.
    pub enum RateLimitStore {
        /// Per replica.
        Memory = "memory",
        /// One budget shared by every replica.
        Redis = "redis",
    }
}

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
    pub shed: ShedConfig,
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

/// An upstream's gRPC URL; the error names `var`.
fn upstream(r: &mut Reader<'_>, var: Var) -> String {
    let url: String = r.get(var);
    r.ensure(
        &var,
        flightmesh_runtime::channel::is_upstream_url(&url),
        "must start with http://, https:// or dns:///",
    );
    url
}

impl Config {
    /// Reads every variable of the gateway, in the order of its docs.
    ///
    /// Longer than most functions: it is the gateway's list of variables, one declaration
    /// each, and splitting it would split the list the README table is made from.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let http_addr = r.get(Var::new("HTTP_ADDR", "0.0.0.0:8080").doc("REST listen address"));
        let upstreams = [
            (peers::FLIGHTS, "gRPC URL of the flights service"),
            (peers::BOOKINGS, "gRPC URL of the bookings service"),
            (peers::STATS, "gRPC URL of the stats-worker service"),
            (peers::AI, "gRPC URL of the ai-agent service"),
        ]
        .map(|(peer, doc)| (peer.name.to_owned(), upstream(r, peer.url(doc))))
        .into();
        let request_timeout = r.duration(
            Var::new("REQUEST_TIMEOUT", "10s")
                .doc("Deadline of an upstream call (504 when exceeded)"),
        );
        let ai_request_timeout = r.duration(
            Var::new("AI_REQUEST_TIMEOUT", "60s")
                .doc("Deadline of an upstream call on `/api/v1/ai/*` (LLM answers are slow)"),
        );
        let stream_heartbeat = r.positive_duration(Var::new("STREAM_HEARTBEAT", "15s").doc(
            "Interval of the comment lines that keep an idle Server-Sent Events answer open through proxies (> 0)",
        ));
        let max_body_bytes = r.positive(
            Var::new("MAX_BODY_BYTES", "65536").doc("Largest request body accepted (413 above)"),
        );
        let cors_allowed_origins = r
            .get::<String>(
                Var::new(
                    "CORS_ALLOWED_ORIGINS",
                    "http://localhost:3000,http://localhost:5173",
                )
                .doc("Comma-separated origins allowed by CORS (credentials allowed)"),
            )
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let drain_delay = r.duration(DRAIN_DELAY);
        let shed = ShedConfig::read(r);
        let db = DbConfig::read(r);
        let migrate_on_start = r.get(
            Var::new("MIGRATE_ON_START", "true")
                .doc("Apply pending migrations of the `identity` schema at start"),
        );
        let environment: Environment = r.get(ENVIRONMENT.doc(
            "`production` or `development`; production refuses weak or example signing keys, the compatible policy (see `ALLOW_COMPATIBLE_IN_PRODUCTION`) and passwords under 8 characters",
        ));
        let access = access::read(r, environment);
        let rate_limits = HashMap::from([
            (
                Class::Default,
                r.get(
                    Var::new("RATE_LIMIT_DEFAULT", "600/60s")
                        .doc("Requests per client per window on `/api/v1/*`"),
                ),
            ),
            (
                Class::Ai,
                r.get(
                    Var::new("RATE_LIMIT_AI", "20/60s")
                        .doc("Requests per client per window on `/api/v1/ai/*`"),
                ),
            ),
            (
                Class::Auth,
                r.get(
                    Var::new("RATE_LIMIT_AUTH", "30/60s")
                        .doc("Requests per client per window on login and register"),
                ),
            ),
        ]);
        let store: RateLimitStore = r.get(
            Var::new("RATE_LIMIT_STORE", "memory")
                .doc("`memory` (per replica) or `redis` (one budget shared by every replica)"),
        );
        let redis_url: Secret<String> = r.get(
            Var::new("REDIS_URL", "redis://127.0.0.1:6379")
                .doc("Redis URL (shared rate limits)")
                .secret(),
        );
        let redis_key_prefix = r
            .raw(Var::new("REDIS_KEY_PREFIX", "").doc("Prepended to the rate limit keys"))
            .unwrap_or_default();
        // The edge: client addresses, limiter memory, slow clients, what the public port shows.
        let trusted_proxies = r.get(Var::new("TRUSTED_PROXIES", "").doc(
            "Comma-separated networks of the proxies in front of the gateway (`10.0.0.0/8,fd00::/8`); the client is the right-most `X-Forwarded-For` hop outside them, and only when the peer is one of them. Empty: the peer is the client",
        ));
        if let Some(value) = r.raw(TRUST_FORWARDED_FOR) {
            // Refused when true or unreadable: it must not silently stop working.
            if value.parse::<bool>() != Ok(false) {
                r.fail(removed_trust_forwarded_for(&value));
            }
        }
        Self {
            http_addr,
            upstreams,
            request_timeout,
            ai_request_timeout,
            stream_heartbeat,
            max_body_bytes,
            shed,
            cors_allowed_origins,
            drain_delay,
            db,
            migrate_on_start,
            policy: access.policy,
            admin: access.admin,
            identity: access.identity,
            rate_limits,
            rate_limit_redis: (store == RateLimitStore::Redis).then_some(redis_url),
            redis_key_prefix,
            trusted_proxies,
            rate_limit_memory_clients: r.positive(Var::new("RATE_LIMIT_MEMORY_CLIENTS", "100000").doc(
                "Most (class, client) windows the in-memory limiter keeps (also the auth fallback of the Redis store); the oldest are evicted beyond it",
            )),
            header_read_timeout: r.positive_duration(Var::new("HEADER_READ_TIMEOUT", "65s").doc(
                "Time a connection gets to send a request's headers, idle keep-alive time included (the connection is closed past it); above the 60 s upstream keep-alive of common proxies",
            )),
            body_read_timeout: r.positive_duration(Var::new("BODY_READ_TIMEOUT", "30s").doc(
                "Time a request gets to send its body (408 and the connection closed past it)",
            )),
            admin_addr: r.get(Var::new("ADMIN_ADDR", "0.0.0.0:8081").doc(
                "Admin HTTP listen address (`/livez`, `/readyz`, `/metrics`)",
            )),
            public_metrics: r
                .opt(Var::optional("PUBLIC_METRICS").doc(
                    "Also serve `/metrics` on the public port (default: true under `ENVIRONMENT=development`, false under `production`)",
                ))
                .unwrap_or(environment == Environment::Development),
            api_docs: r.get(Var::new("API_DOCS", "true").doc(
                "Serve `/docs` and `/openapi.json` (false: 404)",
            )),
        }
    }
}

/// The error for the removed `TRUST_FORWARDED_FOR`: it must not silently stop working.
fn removed_trust_forwarded_for(value: &str) -> ConfigError {
    ConfigError::invalid(
        &TRUST_FORWARDED_FOR,
        value,
        "was removed (it believed the left-most X-Forwarded-For hop, which the client writes): \
         list the networks of your proxies in TRUSTED_PROXIES instead, e.g. TRUSTED_PROXIES=10.0.0.0/8",
    )
}

flightmesh_runtime::env_config!(Config);

#[cfg(test)]
mod tests;
