//! An OpenAI-compatible chat-completions server for tests: it plays the model (the LLM cannot be
//! reached from tests), records every request and answers from a script (a tool call, a text, an
//! error, a delay, malformed JSON).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The model asks for a tool call.
    ToolCall {
        /// The call's id, echoed in the tool result.
        id: &'static str,
        /// The tool's name.
        name: &'static str,
        /// The arguments (sent as a JSON string, as OpenAI does).
        arguments: Value,
    },
    /// The model answers with text.
    Text(&'static str),
    /// An HTTP error status with a JSON error body.
    Status(u16),
    /// A 200 whose body is not JSON.
    Malformed,
    /// Waits, then answers with text.
    Slow(Duration, &'static str),
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Value>,
}

/// A running stub.
#[derive(Clone)]
pub struct Stub {
    inner: Arc<Mutex<Inner>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Stub {
    /// Starts the stub on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, addr }
    }

    /// `AI_BASE_URL` for the agent.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues answers, in order.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Every request received so far.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }
}

fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "stub",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

async fn complete(State(inner): State<Arc<Mutex<Inner>>>, Json(request): Json<Value>) -> Response {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(request);
        inner
            .script
            .pop_front()
            .unwrap_or(Reply::Text("(no more scripted answers)"))
    };
    match reply {
        Reply::ToolCall { id, name, arguments } => Json(completion(
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]
            }),
            "tool_calls",
        ))
        .into_response(),
        Reply::Text(text) => Json(completion(json!({"role": "assistant", "content": text}), "stop")).into_response(),
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": {"message": "scripted failure", "type": "server_error", "code": "scripted"}})),
        )
            .into_response(),
        Reply::Malformed => (StatusCode::OK, [("content-type", "application/json")], "{not json at all").into_response(),
        Reply::Slow(delay, text) => {
            tokio::time::sleep(delay).await;
            Json(completion(json!({"role": "assistant", "content": text}), "stop")).into_response()
        }
    }
}
