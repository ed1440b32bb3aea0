//! Logging: one `tracing` subscriber per process, JSON (containers) or text (development).

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Env, Var};

/// `LOG_FORMAT`: `json` or `text`.
pub const LOG_FORMAT: Var = Var::new(
    "LOG_FORMAT",
    "json",
    "`json` (one object per line, for log collectors) or `text` (for people)",
);
/// `RUST_LOG`: the tracing filter.
pub const RUST_LOG: Var = Var::new(
    "RUST_LOG",
    "info",
    "Log filter, e.g. `info,flightmesh_bookings=debug`",
);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

impl FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" | "pretty" => Ok(Self::Text),
            _ => Err("expected json or text"),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Line format.
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub filter: String,
}

impl TelemetryConfig {
    /// The variables this module reads.
    pub const VARS: &'static [Var] = &[LOG_FORMAT, RUST_LOG];

    /// Reads `LOG_FORMAT` and `RUST_LOG`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            format: env.get(&LOG_FORMAT)?,
            filter: env.get(&RUST_LOG)?,
        })
    }
}

/// Installs the process-wide subscriber. Later calls (several services in one process, tests)
/// keep the first one.
pub fn init(config: &TelemetryConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_target(true))
            .try_init(),
    };
    // An error only means a subscriber is already installed: the first one wins.
    drop(result);
}

/// Logs an error with its whole `source()` chain, which `Display` alone hides.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
