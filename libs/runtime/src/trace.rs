//! W3C trace context across the mesh: REST headers → gRPC metadata → the outbox row → AMQP
//! headers → the consumer. With OpenTelemetry on (`OTEL_EXPORTER_OTLP_ENDPOINT`), each hop opens
//! a span whose parent is the caller's; with it off, the incoming `traceparent` is passed along
//! unchanged, so a caller's trace still reaches the services that do export.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and gRPC metadata key) that carries a request's correlation id, which every log
/// line and span of the request carries.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// The W3C header (and gRPC metadata key, and AMQP header) that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Reads trace context from HTTP headers (gRPC metadata travels as HTTP/2 headers).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Reads trace context from a plain map (AMQP headers, outbox rows).
pub struct MapExtractor<'a>(pub &'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Makes `span` a child of the context in `extractor` (no-op without one, or without OTel).
pub fn set_parent(span: &tracing::Span, extractor: &dyn Extractor) {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(extractor));
    let _ = span.set_parent(parent);
}

/// Makes `span` a child of a bare `traceparent` value (an AMQP header, an outbox column).
pub fn set_parent_from(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
        set_parent(span, &MapExtractor(&carrier));
    }
}

/// The `traceparent` of the current span, if OpenTelemetry is on and the span is sampled.
#[must_use]
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MapInjector(&mut carrier));
    });
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` to pass on: the current span's, else the one received (`incoming`).
#[must_use]
pub fn outgoing_traceparent(incoming: Option<&str>) -> Option<String> {
    current_traceparent().or_else(|| incoming.map(str::to_owned))
}
