//! A chat-completions server for tests: it plays the model (the LLM cannot be reached from
//! tests), records every request and answers from a script (a tool call, a text, a streamed text
//! with a delay per chunk, an error, a delay, malformed JSON, a stream broken midway).
//!
//! It is not lenient: each mode enforces the request rules its provider documents and answers
//! `400` in that provider's error shape otherwise, so a request the real provider would refuse
//! fails the test too.
//!
//! - [`Stub::start`], a strict OpenAI-compatible server (llama.cpp, Ollama, vLLM): `model` and a
//!   non-empty `messages`; every role known (`system`, `developer`, `user`, `assistant`, `tool`);
//!   content a string or an array of typed parts (`text` parts with a string `text`; `image_url`
//!   in user messages only); an assistant message has content or `tool_calls`, each call with an
//!   id, `type: "function"`, a name and `arguments` a JSON object serialized as a string; a tool
//!   message answers an earlier call's id; `n` absent or 1 (llama.cpp refuses more);
//!   `stream_options` only with `stream: true` (OpenAI, vLLM); `tools` of `type: "function"` with a
//!   name; `temperature` within 0..=2. Errors: `{"error": {"message", "type":
//!   "invalid_request_error", "param", "code"}}`.
//! - [`Stub::groq`], Groq's chat completions (<https://console.groq.com/docs/openai>): all of the
//!   above, plus the bearer key; `system` and `assistant` content must be a string (the 400 Groq
//!   answers rig's content-part preamble with: `'messages.0' : for 'role:system' the following must
//!   be satisfied[('messages.0.content' : value must be a string)]`); `logprobs`, `logit_bias`,
//!   `top_logprobs` and `messages[].name` are refused. Errors: `{"error": {"message", "type":
//!   "invalid_request_error"}}`.
//!
//! `stream: true` is answered with OpenAI's server-sent chunks (`chat.completion.chunk`, text and
//! tool-call deltas, the finish reason, the usage chunk when `stream_options.include_usage`, then
//! `[DONE]`). A stream whose client goes away before its end is counted
//! ([`Stub::cancelled_streams`]).
//!
//! This module is the server (the script, the recorded requests, the handler); `rules` checks
//! requests, `wire` holds OpenAI's shapes and `streaming` writes streamed answers.

mod rules;
mod streaming;
mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use rules::check;
use streaming::stream;
use wire::{completion, provider_error};

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
    /// The model answers with text (streamed word by word when the request streams).
    Text(&'static str),
    /// The model writes these chunks, each after `delay` (all of them, joined, after
    /// `delay × chunks` to a request that does not stream).
    Chunks {
        /// The pieces of the answer.
        chunks: Vec<&'static str>,
        /// Time before each piece.
        delay: Duration,
    },
    /// An HTTP error status with a JSON error body.
    Status(u16),
    /// A 200 whose body is not JSON.
    Malformed,
    /// Waits, then answers with text.
    Slow(Duration, &'static str),
    /// A stream that writes this text, then an error chunk, and ends without `[DONE]` (as
    /// OpenAI-compatible servers report a failure mid-answer).
    BrokenStream(&'static str),
}

impl Reply {
    /// [`Reply::ToolCall`]: the model calls `name` with `arguments`, `id` being the call's id.
    #[must_use]
    pub fn tool_call(id: &'static str, name: &'static str, arguments: Value) -> Self {
        Self::ToolCall {
            id,
            name,
            arguments,
        }
    }
}

/// Whose rules the stub enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rules {
    /// A strict OpenAI-compatible server.
    OpenAiCompatible,
    /// Groq, which requires this API key.
    Groq {
        /// The bearer key the requests must carry.
        api_key: String,
    },
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Value>,
    rejections: Vec<String>,
    cancelled_streams: usize,
    completed_streams: usize,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    rules: Rules,
}

/// A running stub.
#[derive(Clone)]
pub struct Stub {
    inner: Arc<Mutex<Inner>>,
    rules: Rules,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Stub {
    /// Starts a strict OpenAI-compatible stub on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        Self::with_rules(Rules::OpenAiCompatible).await
    }

    /// Starts a stub with Groq's rules that accepts `api_key`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn groq(api_key: &str) -> Self {
        Self::with_rules(Rules::Groq {
            api_key: api_key.to_owned(),
        })
        .await
    }

    /// Starts a stub enforcing `rules`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn with_rules(rules: Rules) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Shared {
            inner: inner.clone(),
            rules: rules.clone(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .route("/openai/v1/chat/completions", axum::routing::post(complete))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, rules, addr }
    }

    /// The base URL for the agent: `AI_BASE_URL`, or `GROQ_BASE_URL` for a Groq stub (whose
    /// path is Groq's own, `/openai/v1`).
    pub fn base_url(&self) -> String {
        match self.rules {
            Rules::OpenAiCompatible => format!("http://{}/v1", self.addr),
            Rules::Groq { .. } => format!("http://{}/openai/v1", self.addr),
        }
    }

    /// Queues answers, in order.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Every request received so far (refused ones included).
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Why each refused request was refused (the 400's message), in order.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn rejections(&self) -> Vec<String> {
        self.inner.lock().unwrap().rejections.clone()
    }

    /// Streamed answers whose client closed the connection before their end.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn cancelled_streams(&self) -> usize {
        self.inner.lock().unwrap().cancelled_streams
    }

    /// Streamed answers written to their end.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn completed_streams(&self) -> usize {
        self.inner.lock().unwrap().completed_streams
    }
}

async fn complete(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if let Rules::Groq { api_key } = &shared.rules {
        let expected = format!("Bearer {api_key}");
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(&expected)
        {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}})),
            )
                .into_response();
        }
    }
    let verdict = check(&shared.rules, &request);
    let streaming = request.get("stream") == Some(&Value::Bool(true));
    let usage = request.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    let reply = {
        let mut inner = shared.inner.lock().unwrap();
        inner.requests.push(request);
        if let Err(message) = &verdict {
            inner.rejections.push(message.clone());
        }
        if verdict.is_err() {
            None
        } else {
            Some(
                inner
                    .script
                    .pop_front()
                    .unwrap_or(Reply::Text("(no more scripted answers)")),
            )
        }
    };
    let Some(reply) = reply else {
        let message = verdict.err().unwrap_or_default();
        return provider_error(&shared.rules, StatusCode::BAD_REQUEST, &message);
    };
    if streaming {
        return stream(shared, reply, usage);
    }
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
        Reply::Text(text) | Reply::BrokenStream(text) => {
            Json(completion(json!({"role": "assistant", "content": text}), "stop")).into_response()
        }
        Reply::Chunks { chunks, delay } => {
            let pieces = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
            tokio::time::sleep(delay * pieces).await;
            Json(completion(json!({"role": "assistant", "content": chunks.concat()}), "stop")).into_response()
        }
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
