//! Logging: one `tracing` subscriber per process, JSON (containers) or text (development).

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Reader, Var};

/// `LOG_FORMAT`: `json` or `text`.
pub const LOG_FORMAT: Var = Var::new("LOG_FORMAT", "json")
    .doc("`json` (one object per line, for log collectors) or `text` (for people)");
/// `RUST_LOG`: the tracing filter. Its default quiets lapin, which logs every returned message,
/// body included, at WARN (the relay logs them briefly).
pub const RUST_LOG: Var = Var::new("RUST_LOG", "info,lapin::returned_messages=error")
    .doc("Log filter, e.g. `info,flightmesh_bookings=debug`");

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

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: where spans go (OTLP over gRPC); unset turns tracing off.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: Var = Var::optional("OTEL_EXPORTER_OTLP_ENDPOINT").doc(
    "OTLP/gRPC collector for traces, e.g. `http://otel-collector:4317`; unset: no spans exported (trace context is still passed on)",
);
/// `OTEL_SERVICE_NAME`: the service name on exported spans.
pub const OTEL_SERVICE_NAME: Var = Var::optional("OTEL_SERVICE_NAME")
    .doc("Service name on exported spans (default: the binary's name)");

/// Logging and tracing settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Line format.
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub filter: String,
    /// OTLP collector, if traces are exported.
    pub otlp_endpoint: Option<String>,
    /// Service name on exported spans.
    pub service_name: Option<String>,
}

impl TelemetryConfig {
    /// Reads `LOG_FORMAT`, `RUST_LOG` and the OpenTelemetry variables.
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            format: r.get(LOG_FORMAT),
            filter: r.get(RUST_LOG),
            otlp_endpoint: r.opt(OTEL_EXPORTER_OTLP_ENDPOINT),
            service_name: r.opt(OTEL_SERVICE_NAME),
        }
    }
}

crate::env_config!(TelemetryConfig);

/// Installs the process-wide subscriber (logs, and spans to OTLP when configured). Later calls
/// (several services in one process, tests) keep the first one.
pub fn init(config: &TelemetryConfig, default_service: &str) {
    let exporter = config.otlp_endpoint.as_ref().and_then(|endpoint| {
        use opentelemetry_otlp::WithExportConfig;
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .inspect_err(|err| eprintln!("OTLP exporter to {endpoint} could not be built: {err}"))
            .ok()
    });
    let provider = exporter.map(|exporter| {
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(
                config.service_name.as_deref().unwrap_or(default_service),
            ))
            .build()
    });
    install(config, provider);
}

/// [`init`] with spans going to `exporter` as they end (tests read them back).
pub fn init_with_exporter<E>(config: &TelemetryConfig, service: &str, exporter: E)
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource(service))
        .build();
    install(config, Some(provider));
}

fn resource(service: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build()
}

fn install(
    config: &TelemetryConfig,
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
) {
    use opentelemetry::trace::TracerProvider as _;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let otel = provider.map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing_opentelemetry::layer().with_tracer(provider.tracer("flightmesh"))
    });
    // lapin logs every returned message, body included, at WARN; the outbox relay logs returns
    // itself (INFO while a consumer may still be declaring its queue). Quiet unless the filter
    // names lapin.
    let directives = if config.filter.contains("lapin") {
        config.filter.clone()
    } else {
        format!("{},lapin::returned_messages=error", config.filter)
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
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
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_ansi(colour(
                        std::io::stdout().is_terminal(),
                        std::env::var_os("NO_COLOR"),
                    )),
            )
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

/// Colour codes only for a person at a terminal: a file or a pipe gets plain text, and
/// `NO_COLOR` set to anything but the empty string (<https://no-color.org>) turns it off.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(
            !colour(false, None),
            "a file or a pipe gets no escape codes"
        );
        assert!(!colour(true, Some("1".into())));
        assert!(
            colour(true, Some(String::new().into())),
            "an empty NO_COLOR counts as unset"
        );
    }
}
