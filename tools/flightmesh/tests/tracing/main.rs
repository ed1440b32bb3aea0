//! W3C trace context across the mesh: a booking made with a `traceparent` produces spans in the
//! gateway, bookings (and the flights lookup it makes) and the stats worker, all in the caller's
//! trace. Its own test binary: the span exporter is process-wide.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use flightmesh_runtime::telemetry::{self, LogFormat, TelemetryConfig};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, InMemorySpanExporterBuilder, SpanData};
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn install_exporter() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporterBuilder::new().build();
    let config = TelemetryConfig {
        format: LogFormat::Text,
        filter: "info".to_owned(),
        otlp_endpoint: None,
        service_name: None,
    };
    telemetry::init_with_exporter(&config, "flightmesh-tests", exporter.clone());
    exporter
}

fn in_trace(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .expect("the exporter is open")
        .into_iter()
        .filter(|span| span.span_context.trace_id().to_string() == TRACE_ID)
        .collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The span's `correlation_id` attribute, as text.
fn correlation_id(span: &SpanData) -> Option<std::borrow::Cow<'_, str>> {
    attribute(span, "correlation_id").map(Value::as_str)
}

fn rpc_of<'a>(spans: &'a [SpanData], method: &str) -> Option<&'a SpanData> {
    spans.iter().find(|span| {
        span.name == "rpc"
            && attribute(span, "rpc.method").map(Value::as_str).as_deref() == Some(method)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_trace_reaches_the_gateway_bookings_flights_and_the_stats_worker() {
    let exporter = install_exporter();
    let mesh = TestMesh::start().await;
    let destination = mesh.destination("Trazada", 10.0, false, true).await;
    let flight = mesh.flight("TR100", 100.0, destination, 5).await;

    let response = reqwest::Client::new()
        .post(mesh.url("/api/v1/bookings/"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("x-correlation-id", "trace-test-1")
        .json(&json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight, "has_pet": false}))
        .send()
        .await
        .expect("POST /bookings");
    assert_eq!(response.status(), 200);

    // The stats worker applies the event asynchronously: wait for its span.
    eventually(Duration::from_secs(15), || {
        let exporter = exporter.clone();
        async move {
            in_trace(&exporter)
                .iter()
                .any(|span| span.name == "consume")
        }
    })
    .await;
    let spans = in_trace(&exporter);
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();

    // Gateway: the request span is the child of the caller's span.
    let request = spans
        .iter()
        .find(|span| span.name == "request")
        .unwrap_or_else(|| panic!("no gateway span in {names:?}"));
    assert_eq!(request.parent_span_id.to_string(), CALLER_SPAN);
    assert!(request.parent_span_is_remote);
    assert_eq!(correlation_id(request).as_deref(), Some("trace-test-1"));

    // Bookings: its RPC span is the child of the gateway's, and carries the correlation id.
    let create =
        rpc_of(&spans, "CreateBooking").unwrap_or_else(|| panic!("no bookings span in {names:?}"));
    assert_eq!(create.parent_span_id, request.span_context.span_id());
    assert_eq!(correlation_id(create).as_deref(), Some("trace-test-1"));

    // Flights: the lookup bookings makes is the child of the booking's span.
    let get_flight =
        rpc_of(&spans, "GetFlight").unwrap_or_else(|| panic!("no flights span in {names:?}"));
    assert_eq!(get_flight.parent_span_id, create.span_context.span_id());

    // Stats worker: the consume span's parent is the span that wrote the event (through the
    // outbox row and the AMQP header).
    let consume = spans
        .iter()
        .find(|span| span.name == "consume")
        .expect("a consume span");
    assert_eq!(consume.parent_span_id, create.span_context.span_id());
    assert!(consume.parent_span_is_remote);

    mesh.stop().await;
}
