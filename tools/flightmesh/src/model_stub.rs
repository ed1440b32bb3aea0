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

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
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

/// Checks `request` against `rules`; the message of the 400 otherwise.
///
/// # Errors
/// The provider's message for the first rule the request breaks.
pub fn check(rules: &Rules, request: &Value) -> Result<(), String> {
    let groq = matches!(rules, Rules::Groq { .. });
    let Some(body) = request.as_object() else {
        return Err("the request body must be a JSON object".into());
    };
    if groq {
        for field in ["logprobs", "logit_bias", "top_logprobs"] {
            if body.contains_key(field) {
                return Err(format!("'{field}' : property '{field}' is unsupported"));
            }
        }
    }
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("'model' : property 'model' is missing".into());
    }
    if let Some(n) = body.get("n")
        && n.as_u64() != Some(1)
    {
        return Err("'n' : only one completion choice is allowed (n must be 1)".into());
    }
    let streaming = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err("'stream' : value must be a boolean".into()),
    };
    if body.get("stream_options").is_some_and(|o| !o.is_null()) && !streaming {
        return Err("'stream_options' is only allowed when 'stream' is enabled".into());
    }
    if let Some(temperature) = body.get("temperature")
        && !temperature
            .as_f64()
            .is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Err("'temperature' : must be a number between 0 and 2".into());
    }
    check_tools(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("'messages' : must be a non-empty array")?;
    let mut calls: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages.{i}");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or(format!("'{at}.role' : property 'role' is missing"))?;
        if groq && message.get("name").is_some() {
            return Err(format!("'{at}.name' : property 'name' is unsupported"));
        }
        let content = message.get("content");
        let string_only = groq && matches!(role, "system" | "assistant");
        match content {
            None | Some(Value::Null) if role == "assistant" => {}
            Some(Value::String(_)) => {}
            Some(Value::Array(_)) if string_only => {
                return Err(format!(
                    "'{at}' : for 'role:{role}' the following must be satisfied[('{at}.content' : value must be a string)]"
                ));
            }
            Some(Value::Array(parts)) => check_parts(&at, role, parts)?,
            _ => {
                return Err(format!(
                    "'{at}.content' : value must be a string or an array"
                ));
            }
        }
        match role {
            "system" | "developer" | "user" => {}
            "assistant" => {
                let tool_calls = message.get("tool_calls").and_then(Value::as_array);
                let empty = content.is_none_or(|c| c.is_null() || c == "");
                if empty && tool_calls.is_none_or(Vec::is_empty) {
                    return Err(format!(
                        "'{at}' : an assistant message needs content or tool_calls"
                    ));
                }
                for call in tool_calls.into_iter().flatten() {
                    calls.push(check_call(&at, call)?);
                }
            }
            "tool" => {
                let id = message.get("tool_call_id").and_then(Value::as_str);
                if !id.is_some_and(|id| calls.contains(&id)) {
                    return Err(format!(
                        "'{at}.tool_call_id' : must answer a tool call of an earlier assistant message"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "'{at}.role' : value must be one of system, developer, user, assistant, tool (got {other})"
                ));
            }
        }
    }
    Ok(())
}

fn check_parts(at: &str, role: &str, parts: &[Value]) -> Result<(), String> {
    if parts.is_empty() {
        return Err(format!("'{at}.content' : must not be an empty array"));
    }
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") if part.get("text").is_some_and(Value::is_string) => {}
            Some("image_url") if role == "user" => {}
            _ => {
                return Err(format!(
                    "'{at}.content.{j}' : unsupported content part for role {role}"
                ));
            }
        }
    }
    Ok(())
}

fn check_call<'a>(at: &str, call: &'a Value) -> Result<&'a str, String> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or(format!("'{at}.tool_calls' : every call needs an id"))?;
    let function = call.get("function");
    let named = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let arguments = function
        .and_then(|f| f.get("arguments"))
        .and_then(Value::as_str)
        .and_then(|a| serde_json::from_str::<Value>(a).ok());
    if call.get("type").and_then(Value::as_str) != Some("function")
        || !named
        || !arguments.is_some_and(|a| a.is_object())
    {
        return Err(format!(
            "'{at}.tool_calls' : a call is {{id, type: function, function: {{name, arguments: JSON object as a string}}}}"
        ));
    }
    Ok(id)
}

fn check_tools(body: &serde_json::Map<String, Value>) -> Result<(), String> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => {
            if body.get("tool_choice").is_some_and(|c| !c.is_null()) {
                return Err("'tool_choice' is only allowed when 'tools' are specified".into());
            }
            return Ok(());
        }
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err("'tools' : value must be an array".into()),
    };
    for (i, tool) in tools.iter().enumerate() {
        let named = tool
            .pointer("/function/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let parameters = tool.pointer("/function/parameters");
        if tool.get("type").and_then(Value::as_str) != Some("function")
            || !named
            || parameters.is_some_and(|p| !p.is_object())
        {
            return Err(format!(
                "'tools.{i}' : a tool is {{type: function, function: {{name, parameters: object}}}}"
            ));
        }
    }
    Ok(())
}

fn provider_error(rules: &Rules, status: StatusCode, message: &str) -> Response {
    let body = match rules {
        Rules::Groq { .. } => {
            json!({"error": {"message": message, "type": "invalid_request_error"}})
        }
        Rules::OpenAiCompatible => json!({"error": {
            "message": message, "type": "invalid_request_error", "param": null, "code": null
        }}),
    };
    (status, Json(body)).into_response()
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

fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": "stub",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    });
    format!("data: {chunk}\n\n")
}

const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"stub\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

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

/// A streamed answer: `(delay before, frame)` pairs.
fn stream(shared: Shared, reply: Reply, usage: bool) -> Response {
    let role = json!({"role": "assistant", "content": ""});
    let mut frames: Vec<(Duration, String)> = vec![(Duration::ZERO, chunk(role, None))];
    let text_frames = |frames: &mut Vec<(Duration, String)>, pieces: Vec<&str>, delay: Duration| {
        for piece in pieces {
            frames.push((delay, chunk(json!({"content": piece}), None)));
        }
    };
    let mut finish = Some("stop");
    match reply {
        Reply::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error", "code": "scripted"}})),
            )
                .into_response();
        }
        Reply::Malformed => {
            frames.push((Duration::ZERO, "data: {not json at all\n\n".to_owned()));
            finish = None;
        }
        Reply::Text(text) => text_frames(
            &mut frames,
            text.split_inclusive(' ').collect(),
            Duration::ZERO,
        ),
        Reply::Slow(delay, text) => text_frames(&mut frames, vec![text], delay),
        Reply::Chunks { chunks, delay } => text_frames(&mut frames, chunks, delay),
        Reply::ToolCall {
            id,
            name,
            arguments,
        } => {
            let arguments = arguments.to_string();
            let (first, rest) = arguments.split_at(arguments.len() / 2);
            frames.push((
                Duration::ZERO,
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ),
            ));
            for part in [first, rest] {
                frames.push((
                    Duration::ZERO,
                    chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                        None,
                    ),
                ));
            }
            finish = Some("tool_calls");
        }
        Reply::BrokenStream(text) => {
            text_frames(
                &mut frames,
                text.split_inclusive(' ').collect(),
                Duration::ZERO,
            );
            frames.push((
                Duration::ZERO,
                "data: {\"error\":{\"message\":\"scripted failure mid-stream\",\"type\":\"server_error\"}}\n\n".to_owned(),
            ));
            finish = None;
        }
    }
    if let Some(reason) = finish {
        frames.push((Duration::ZERO, chunk(json!({}), Some(reason))));
        if usage {
            frames.push((Duration::ZERO, USAGE_CHUNK.to_owned()));
        }
        frames.push((Duration::ZERO, DONE.to_owned()));
    }
    let state = Streamed {
        frames: frames.into(),
        inner: shared.inner,
        ended: false,
    };
    let body = futures::stream::unfold(state, |mut state| async move {
        let Some((delay, frame)) = state.frames.pop_front() else {
            state.ended = true;
            state.inner.lock().unwrap().completed_streams += 1;
            return None;
        };
        tokio::time::sleep(delay).await;
        Some((Ok::<_, std::convert::Infallible>(frame), state))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A streamed answer being written; dropped before its end, its client went away.
struct Streamed {
    frames: VecDeque<(Duration, String)>,
    inner: Arc<Mutex<Inner>>,
    ended: bool,
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if !self.ended
            && let Ok(mut inner) = self.inner.lock()
        {
            inner.cancelled_streams += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groq() -> Rules {
        Rules::Groq {
            api_key: "k".into(),
        }
    }

    #[test]
    fn groq_refuses_rigs_content_part_preamble_and_unsupported_fields() {
        let old = json!({"model": "m", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Eres un asistente."}]},
            {"role": "user", "content": "hola"}
        ]});
        assert_eq!(
            check(&groq(), &old).unwrap_err(),
            "'messages.0' : for 'role:system' the following must be satisfied[('messages.0.content' : value must be a string)]"
        );
        // A compatible server takes text parts.
        assert_eq!(check(&Rules::OpenAiCompatible, &old), Ok(()));
        let flat = json!({"model": "m", "messages": [
            {"role": "system", "content": "Eres un asistente."},
            {"role": "user", "content": [{"type": "text", "text": "hola"}]}
        ]});
        assert_eq!(check(&groq(), &flat), Ok(()));
        for (field, value) in [
            ("logprobs", json!(true)),
            ("logit_bias", json!({})),
            ("n", json!(2)),
        ] {
            let mut request = flat.clone();
            request[field] = value;
            assert!(check(&groq(), &request).is_err(), "{field}");
        }
        let mut named = flat.clone();
        named["messages"][1]["name"] = json!("ana");
        assert!(check(&groq(), &named).is_err());
    }

    #[test]
    fn the_compatible_rules_check_roles_calls_and_stream_options() {
        let call =
            json!({"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}});
        let ok = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [
            {"role": "user", "content": "hola"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"}
        ]});
        assert_eq!(check(&Rules::OpenAiCompatible, &ok), Ok(()));
        let mut orphan = ok.clone();
        orphan["messages"][2]["tool_call_id"] = json!("c2");
        assert!(check(&Rules::OpenAiCompatible, &orphan).is_err());
        let mut unstreamed = ok.clone();
        unstreamed["stream"] = json!(false);
        assert!(check(&Rules::OpenAiCompatible, &unstreamed).is_err());
        let mut unknown_role = ok;
        unknown_role["messages"][0]["role"] = json!("robot");
        assert!(check(&Rules::OpenAiCompatible, &unknown_role).is_err());
    }
}
