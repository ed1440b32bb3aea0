//! Server-streaming RPCs over REST (`POST /api/v1/ai/chat/stream`): Server-Sent Events or
//! NDJSON, read with a real HTTP client as the answer is written, against the real mesh (the
//! offline answerer, or the model stub streaming with a delay per chunk).

use std::time::Duration;

use flightmesh::model_stub::{Reply, Stub};
use flightmesh::testing::{TestMesh, eventually};
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::auth::register_and_login;
use crate::support::{admin_metrics, metric, production_mesh_with, with_bearer};

const STREAM: &str = "/api/v1/ai/chat/stream";

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// `data:` (the default event type).
    Message(Value),
    /// `event: error`.
    Error(Value),
    /// A comment line.
    Heartbeat,
}

/// Reads a streamed answer event by event, as a browser's EventSource would.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(mesh: &TestMesh, body: &Value) -> Self {
        let response = post_stream(mesh, "text/event-stream", None, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; `None` at the end of the answer.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(block.trim_end()));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("the stream reads")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Every remaining event but heartbeats.
    async fn rest(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            if event != Event::Heartbeat {
                events.push(event);
            }
        }
        events
    }
}

fn parse(block: &str) -> Event {
    if block.starts_with(':') {
        return Event::Heartbeat;
    }
    let mut name = "message";
    let mut data = String::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event: ") {
            name = value;
        } else if let Some(value) = line.strip_prefix("data: ") {
            data.push_str(value);
        } else {
            panic!("unexpected SSE line {line:?}");
        }
    }
    let data: Value = serde_json::from_str(&data).unwrap_or_else(|_| panic!("not JSON: {data}"));
    match name {
        "message" => Event::Message(data),
        "error" => Event::Error(data),
        other => panic!("unexpected event type {other}"),
    }
}

/// POST `body` to the streaming route with `Accept: accept`, as `token` if any → the response
/// as it starts.
async fn post_stream(
    mesh: &TestMesh,
    accept: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let request = mesh.http.post(mesh.url(STREAM)).header("accept", accept);
    with_bearer(request, token).json(body).send().await.unwrap()
}

/// The Redis key of the AI history of the anonymous `session`.
fn anonymous_history_key(mesh: &TestMesh, session: &str) -> String {
    format!("{}ai:history:anon:{session}", mesh.names.redis_prefix)
}

async fn seed_cartagena(mesh: &TestMesh) {
    mesh.cartagena_flight(100).await;
}

/// A model answer streamed as `word` `count` times, one chunk every `pause`.
fn repeated(word: &'static str, count: usize, pause: Duration) -> Reply {
    Reply::Chunks {
        chunks: vec![word; count],
        delay: pause,
    }
}

/// A model stub that answers `replies` in order, and the mesh with its AI agent on it (model
/// `stub-model`) and `extra` set.
async fn model_stub_mesh(
    replies: impl IntoIterator<Item = Reply>,
    extra: &[(&str, &str)],
) -> (Stub, TestMesh) {
    let stub = Stub::start().await;
    stub.script(replies);
    let settings = [&[("AI_AI_MODEL", "stub-model")], extra].concat();
    let mesh = TestMesh::start_with_model(&stub, &settings).await;
    (stub, mesh)
}

/// The pieces before the last message, and the last message.
fn split_final(events: &[Event]) -> (Vec<&Value>, &Value) {
    let messages: Vec<&Value> = events
        .iter()
        .map(|e| match e {
            Event::Message(data) => data,
            other => panic!("unexpected {other:?} in {events:?}"),
        })
        .collect();
    let (last, pieces) = messages.split_last().expect("at least the last message");
    assert_eq!(last["done"], json!(true), "{events:?}");
    assert!(pieces.iter().all(|p| p["done"] == json!(false)));
    (pieces.to_vec(), last)
}

/// The gateway's metric `name` (0 before it is first counted).
async fn gateway_metric(mesh: &TestMesh, name: &str) -> f64 {
    metric(&admin_metrics(mesh).await, name).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offline_answer_arrives_sentence_by_sentence_over_sse() {
    let mesh = TestMesh::start().await;
    seed_cartagena(&mesh).await;
    let mut events = Events::open(
        &mesh,
        &json!({"message": "¿Impuestos, precio y mascotas de Cartagena?"}),
    )
    .await;
    let events = events.rest().await;
    let (pieces, last) = split_final(&events);
    assert!(pieces.len() >= 3, "one event per sentence: {events:?}");
    let written: String = pieces
        .iter()
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(last["response"].as_str().unwrap(), written);
    assert!(written.starts_with("Los impuestos para viajar a Cartagena son de 50.00"));
    assert!(written.contains("Se permite viajar con mascotas a Cartagena."));
    assert_eq!(last["tools_used"], json!(["market_data"]));
    let session = last["session_id"].as_str().unwrap();
    // A server-issued anonymous session ("anon-" and 64 hex digits).
    assert!(
        session.starts_with("anon-") && session.len() == 69,
        "{last}"
    );
    assert!(pieces.iter().all(|p| p["session_id"] == json!(session)));

    // The same history as /ai/chat: the question and the answer were kept.
    let key = anonymous_history_key(&mesh, session);
    let kept: Vec<String> = mesh.redis().await.lrange(key, 0, -1).await.unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_answer_streams_its_chunks_after_a_tool_call() {
    let (stub, mesh) = model_stub_mesh(
        [
            Reply::ToolCall {
                id: "call_1",
                name: "market_data",
                arguments: json!({"destination": "Cartagena"}),
            },
            Reply::Chunks {
                chunks: vec!["Cartagena ", "paga ", "50.00 ", "de impuestos."],
                delay: Duration::from_millis(50),
            },
        ],
        &[],
    )
    .await;
    seed_cartagena(&mesh).await;
    let mut events = Events::open(&mesh, &json!({"message": "¿Impuestos de Cartagena?"})).await;
    // Several events arrive before the end.
    let first = events.next().await.unwrap();
    let Event::Message(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!(first["done"], json!(false));
    let events = events.rest().await;
    let (pieces, last) = split_final(&events);
    assert!(pieces.len() >= 3, "{events:?}");
    let written: String = std::iter::once(&first)
        .chain(pieces)
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(written, "Cartagena paga 50.00 de impuestos.");
    assert_eq!(
        last["response"],
        json!("Cartagena paga 50.00 de impuestos.")
    );
    assert_eq!(last["tools_used"], json!(["market_data"]));

    // Both model requests streamed, and passed the strict OpenAI-compatible rules.
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r["stream"] == json!(true)));
    assert_eq!(stub.rejections(), Vec::<String>::new());
    // The stub counts a stream once its last frame is written: the client may read it first.
    eventually(Duration::from_secs(5), || async {
        stub.completed_streams() == 2
    })
    .await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_event_stream_accept_the_answer_is_ndjson() {
    let mesh = TestMesh::start().await;
    seed_cartagena(&mesh).await;
    let question = json!({"message": "¿Impuestos y mascotas de Cartagena?"});
    let response = post_stream(&mesh, "application/json", None, &question).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 3, "{text}");
    assert!(
        lines.iter().all(|line| line["result"].is_object()),
        "{text}"
    );
    let last = &lines.last().unwrap()["result"];
    assert_eq!(last["done"], json!(true));
    assert_eq!(last["tools_used"], json!(["market_data"]));

    // OpenAPI documents the route with both media types.
    let (_, doc) = mesh.get("/openapi.json").await;
    let operation = &doc["paths"][STREAM]["post"];
    let content = operation["responses"]["200"]["content"]
        .as_object()
        .unwrap();
    let mut media: Vec<&str> = content.keys().map(String::as_str).collect();
    media.sort_unstable();
    assert_eq!(media, ["application/x-ndjson", "text/event-stream"]);
    assert!(
        operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["message"]
            .is_object()
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_cancels_the_model_request() {
    let (stub, mesh) =
        model_stub_mesh([repeated("palabra ", 100, Duration::from_millis(100))], &[]).await;
    let cancelled_before = gateway_metric(&mesh, "gateway_stream_cancelled_total").await;
    let mut events = Events::open(&mesh, &json!({"message": "Cuéntame algo largo"})).await;
    let mut session = String::new();
    for _ in 0..2 {
        match events.next().await.unwrap() {
            Event::Message(data) => session = data["session_id"].as_str().unwrap().to_owned(),
            Event::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    drop(events);

    // The gateway dropped the call, the agent dropped the model request: the stub saw its
    // connection closed long before the 10 s its answer takes.
    eventually(Duration::from_secs(5), || async {
        stub.cancelled_streams() == 1
    })
    .await;
    assert_eq!(stub.completed_streams(), 0);
    assert!(
        gateway_metric(&mesh, "gateway_stream_cancelled_total").await > cancelled_before,
        "the cancellation is counted"
    );
    // An abandoned answer is not kept.
    let key = anonymous_history_key(&mesh, &session);
    let exists: i64 = mesh.redis().await.exists(key).await.unwrap();
    assert_eq!(exists, 0);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_mid_stream_are_error_events_with_the_contracts_messages() {
    let (_stub, mesh) = model_stub_mesh(
        [
            Reply::BrokenStream("Empiezo a responder pero"),
            repeated("lento ", 20, Duration::from_millis(200)),
            Reply::BrokenStream("Otra vez"),
        ],
        &[("AI_AI_TIMEOUT", "1s")],
    )
    .await;
    // The provider fails midway: what was written arrived, then the contract's 500 message.
    let mut events = Events::open(&mesh, &json!({"message": "hola"})).await;
    let events = events.rest().await;
    let (last, before) = events.split_last().unwrap();
    assert!(!before.is_empty(), "{events:?}");
    assert!(before.iter().all(|e| matches!(e, Event::Message(_))));
    assert_eq!(
        last,
        &Event::Error(json!({"detail": "Error procesando solicitud de IA"}))
    );

    // The agent's deadline passes mid-answer: the 504 message.
    let mut events = Events::open(&mesh, &json!({"message": "hola"})).await;
    let events = events.rest().await;
    assert_eq!(
        events.last().unwrap(),
        &Event::Error(
            json!({"detail": "El servicio de IA tardo demasiado en responder. Intente de nuevo."})
        )
    );
    assert!(
        events.len() > 1,
        "pieces came before the deadline: {events:?}"
    );

    // NDJSON: the failure is the last line, with the HTTP status the unary route would answer.
    // (reqwest's default `Accept: */*`, said out loud.)
    let response = post_stream(&mesh, "*/*", None, &json!({"message": "hola"})).await;
    let text = response.text().await.unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"error": {"status": 500, "detail": "Error procesando solicitud de IA"}})
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_deadline_bounds_the_whole_stream_and_heartbeats_fill_the_silence() {
    let (_stub, mesh) = model_stub_mesh(
        [repeated("despacio ", 10, Duration::from_millis(700))],
        &[
            ("GATEWAY_AI_REQUEST_TIMEOUT", "2s"),
            ("GATEWAY_STREAM_HEARTBEAT", "200ms"),
        ],
    )
    .await;
    let mut events = Events::open(&mesh, &json!({"message": "hola"})).await;
    let mut all = Vec::new();
    while let Some(event) = events.next().await {
        all.push(event);
    }
    let heartbeats = all.iter().filter(|e| **e == Event::Heartbeat).count();
    assert!(heartbeats >= 2, "{all:?}");
    assert!(
        all.iter().any(|e| matches!(e, Event::Message(_))),
        "{all:?}"
    );
    assert_eq!(
        all.last().unwrap(),
        &Event::Error(json!({"detail": "La solicitud excedio el tiempo de espera."}))
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_rate_limit_and_validation_answer_plain_json_before_any_stream() {
    let mesh = production_mesh_with(&[("GATEWAY_RATE_LIMIT_AI", "2/60s")]).await;
    let (hola, blank) = (json!({"message": "hola"}), json!({"message": "  "}));
    let send = |token, body| post_stream(&mesh, "text/event-stream", token, body);
    let anonymous = send(None, &hola).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/json");
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"detail": "No autenticado"})
    );

    let user = register_and_login(&mesh, "eva@example.com", "secreto1").await;
    let empty = send(Some(&user), &blank).await;
    assert_eq!(empty.status(), 422);
    assert_eq!(empty.headers()["content-type"], "application/json");
    let body: Value = empty.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "message"]));
    assert_eq!(
        body["detail"][0]["msg"],
        json!("message no puede estar vacio")
    );

    // A signed-in user's stream: their default session.
    let ok = send(Some(&user), &hola).await;
    assert_eq!(ok.status(), 200);
    let text = ok.text().await.unwrap();
    assert!(text.contains("\"session_id\":\"default\""), "{text}");

    // The AI budget (2 per minute) counts streamed routes too.
    let limited = send(Some(&user), &hola).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["content-type"], "application/json");
    mesh.stop().await;
}
