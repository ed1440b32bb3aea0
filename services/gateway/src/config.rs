//! The gateway's configuration, read once from the environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_runtime::config::{ConfigError, Dur, Env, Var};
use flightmesh_runtime::host::DRAIN_DELAY;

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
}

impl Config {
    /// Every variable the gateway reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        vec![
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
        ]
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
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    &var,
                    &url,
                    "must start with http:// or https://",
                ));
            }
            upstreams.insert(domain.to_owned(), url);
        }
        let max_body_bytes: usize = env.get(&MAX_BODY_BYTES)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                &MAX_BODY_BYTES,
                "0",
                "must be positive",
            ));
        }
        Ok(Self {
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
        })
    }
}
