//! Time to the first streamed event against the whole unary answer, on the real mesh through the
//! gateway: the offline answerer, and the model stub writing its answer in chunks with a delay
//! each (a model at a known speed). Prints the "Streaming answers" table of docs/benchmarks.md.
//!
//! ```sh
//! cargo run -p flightmesh --features testing --example stream_bench [-- <rounds>]
//! ```

use std::io::Write as _;
use std::time::{Duration, Instant};

use flightmesh::model_stub::{Reply, Stub};
use flightmesh::testing::TestMesh;
use serde_json::json;

/// The stub's answer: 20 chunks, 50 ms apart (a model writing ~1 s).
const CHUNKS: usize = 20;
const CHUNK_DELAY: Duration = Duration::from_millis(50);
const QUESTION: &str = "¿Impuestos, precio, promoción, mascotas, vuelos y demanda de Cartagena?";

struct Timings {
    unary: Vec<Duration>,
    first: Vec<Duration>,
    last: Vec<Duration>,
}

async fn unary(mesh: &TestMesh) -> Duration {
    let started = Instant::now();
    let (status, body) = mesh
        .post("/api/v1/ai/chat", &json!({"message": QUESTION}))
        .await;
    assert_eq!(status, 200, "{body}");
    started.elapsed()
}

/// (first event, last event) of one SSE answer.
async fn streamed(mesh: &TestMesh) -> (Duration, Duration) {
    let started = Instant::now();
    let mut response = mesh
        .http
        .post(mesh.url("/api/v1/ai/chat/stream"))
        .header("accept", "text/event-stream")
        .json(&json!({"message": QUESTION}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let mut first = None;
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.expect("the stream reads") {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first.is_none() && text.contains("data: ") {
            first = Some(started.elapsed());
        }
    }
    assert!(text.contains("\"done\":true"), "{text}");
    (first.expect("an event"), started.elapsed())
}

async fn measure(mesh: &TestMesh, stub: Option<&Stub>, rounds: usize) -> Timings {
    let script = || {
        if let Some(stub) = stub {
            stub.script([Reply::Chunks {
                chunks: vec!["palabra "; CHUNKS],
                delay: CHUNK_DELAY,
            }]);
        }
    };
    let mut timings = Timings {
        unary: Vec::new(),
        first: Vec::new(),
        last: Vec::new(),
    };
    for _ in 0..rounds {
        script();
        timings.unary.push(unary(mesh).await);
        script();
        let (first, last) = streamed(mesh).await;
        timings.first.push(first);
        timings.last.push(last);
    }
    timings
}

fn percentile(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize - 1;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn row(name: &str, timings: &Timings) -> String {
    let cell = |values: &[Duration]| {
        format!(
            "{:.1} / {:.1}",
            percentile(values, 50.0),
            percentile(values, 99.0)
        )
    };
    format!(
        "| {name} | {} | {} | {} |",
        cell(&timings.unary),
        cell(&timings.first),
        cell(&timings.last)
    )
}

async fn seed(mesh: &TestMesh) {
    let cartagena = mesh.destination("Cartagena", 50.0, true, true).await;
    mesh.flight("CT-1", 1000.0, cartagena, 100).await;
    mesh.flight("CT-2", 500.01, cartagena, 100).await;
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);

    let offline = TestMesh::start().await;
    seed(&offline).await;
    measure(&offline, None, 3).await; // warm-up
    let offline_timings = measure(&offline, None, rounds).await;
    offline.stop().await;

    let stub = Stub::start().await;
    let model = TestMesh::start_with_model(&stub, &[]).await;
    seed(&model).await;
    measure(&model, Some(&stub), 2).await; // warm-up
    let model_timings = measure(&model, Some(&stub), rounds.min(10)).await;
    model.stop().await;

    let model_name = format!(
        "model stub, {CHUNKS} chunks × {} ms ({} rounds)",
        CHUNK_DELAY.as_millis(),
        rounds.min(10)
    );
    let table = [
        "| answerer | unary answer, ms p50 / p99 | first streamed event, ms p50 / p99 | last streamed event, ms p50 / p99 |".to_owned(),
        "|---|---|---|---|".to_owned(),
        row(&format!("offline ({rounds} rounds)"), &offline_timings),
        row(&model_name, &model_timings),
    ];
    let mut out = std::io::stdout().lock();
    for line in table {
        writeln!(out, "{line}").expect("stdout");
    }
}
