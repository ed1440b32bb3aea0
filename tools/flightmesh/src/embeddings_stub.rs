//! An OpenAI-compatible `/v1/embeddings` server for tests, strict about the request as the
//! OpenAI API reference documents it (what llama.cpp's server, Ollama and vLLM accept too):
//! a JSON object with `model` (a non-empty string) and `input` (a non-empty string or a
//! non-empty array of non-empty strings), optionally `encoding_format` ("float"), `dimensions`
//! (a positive integer) and `user` (a string) — any other field is a 400
//! `invalid_request_error`, as is a missing or wrong `Authorization` when a key is required.
//!
//! Vectors are a signed hashed bag of words of `dimensions` components (texts sharing words are
//! close), or what the script says: an HTTP error, a delay, malformed JSON.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One scripted answer (instead of the vectors).
#[derive(Debug, Clone)]
pub enum EmbeddingReply {
    /// An HTTP error status with an OpenAI error body.
    Status(u16),
    /// A 200 whose body is not JSON.
    Malformed,
    /// Waits, then answers normally.
    Slow(Duration),
}

struct Inner {
    dimensions: usize,
    api_key: Option<String>,
    script: VecDeque<EmbeddingReply>,
    requests: Vec<Value>,
    rejected: Vec<String>,
}

/// A running embeddings stub.
#[derive(Clone)]
pub struct EmbeddingsStub {
    inner: Arc<Mutex<Inner>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl EmbeddingsStub {
    /// Starts the stub on a free loopback port, answering vectors of `dimensions` components;
    /// with `api_key`, requests must carry `Authorization: Bearer <api_key>`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start(dimensions: usize, api_key: Option<&str>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            dimensions,
            api_key: api_key.map(str::to_owned),
            script: VecDeque::new(),
            requests: Vec::new(),
            rejected: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(embed))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, addr }
    }

    /// `EMBEDDINGS_BASE_URL` for the agent.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues scripted answers, in order (each replaces one normal answer).
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    pub fn script(&self, replies: impl IntoIterator<Item = EmbeddingReply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Every request body received so far (valid or not).
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    #[must_use]
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Why requests were refused by the rule check, in order.
    ///
    /// # Panics
    /// If a previous holder of the lock panicked.
    #[must_use]
    pub fn rejected(&self) -> Vec<String> {
        self.inner.lock().unwrap().rejected.clone()
    }
}

/// The OpenAI request rules; `Err` says which one the request breaks.
///
/// # Errors
/// The first rule broken.
pub fn check_request(request: &Value) -> Result<Vec<String>, String> {
    let object = request.as_object().ok_or("the body is not a JSON object")?;
    for key in object.keys() {
        if !["model", "input", "encoding_format", "dimensions", "user"].contains(&key.as_str()) {
            return Err(format!("unsupported field {key:?}"));
        }
    }
    match object.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {}
        _ => return Err("model must be a non-empty string".into()),
    }
    let inputs = match object.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("input must be a string or an array of strings")?,
        _ => return Err("input must be a string or a non-empty array of strings".into()),
    };
    if inputs.iter().any(String::is_empty) {
        return Err("input must not contain empty strings".into());
    }
    match object.get("encoding_format") {
        None => {}
        Some(Value::String(format)) if format == "float" => {}
        Some(_) => return Err("encoding_format must be \"float\"".into()),
    }
    match object.get("dimensions") {
        None => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {}
        Some(_) => return Err("dimensions must be a positive integer".into()),
    }
    if object.get("user").is_some_and(|user| !user.is_string()) {
        return Err("user must be a string".into());
    }
    Ok(inputs)
}

/// A signed hashed bag of words: texts sharing words are close.
#[must_use]
pub fn bag_of_words(text: &str, dimensions: usize) -> Vec<f64> {
    let mut vector = vec![0.0; dimensions];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let slot = usize::try_from(hash % dimensions as u64).unwrap_or(0);
        vector[slot] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    vector
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
    )
        .into_response()
}

async fn embed(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (checked, reply, dimensions, key_ok) = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(request.clone());
        let key_ok = inner.api_key.as_ref().is_none_or(|key| {
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Bearer {key}").as_str())
        });
        let checked = check_request(&request);
        if let Err(reason) = &checked {
            inner.rejected.push(reason.clone());
        }
        let reply = if checked.is_ok() && key_ok {
            inner.script.pop_front()
        } else {
            None
        };
        (checked, reply, inner.dimensions, key_ok)
    };
    if !key_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided",
        );
    }
    let inputs = match checked {
        Ok(inputs) => inputs,
        Err(reason) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", &reason),
    };
    match reply {
        Some(EmbeddingReply::Status(code)) => {
            return error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "server_error",
                "scripted failure",
            );
        }
        Some(EmbeddingReply::Malformed) => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{not json at all",
            )
                .into_response();
        }
        Some(EmbeddingReply::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": bag_of_words(text, dimensions)})
        })
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": request["model"],
        "usage": {"prompt_tokens": 8, "total_tokens": 8}
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_accept_openai_requests_and_refuse_the_rest() {
        assert_eq!(
            check_request(&json!({"model": "m", "input": "hola"})).unwrap(),
            ["hola"]
        );
        assert!(
            check_request(
                &json!({"model": "m", "input": ["a", "b"], "encoding_format": "float", "dimensions": 8})
            )
            .is_ok()
        );
        for bad in [
            json!({"input": "x"}),
            json!({"model": "", "input": "x"}),
            json!({"model": "m"}),
            json!({"model": "m", "input": []}),
            json!({"model": "m", "input": [1, 2]}),
            json!({"model": "m", "input": ""}),
            json!({"model": "m", "input": "x", "encoding_format": "base64"}),
            json!({"model": "m", "input": "x", "truncate": true}),
            json!(["m"]),
        ] {
            assert!(check_request(&bad).is_err(), "{bad}");
        }
    }
}
