//! OpenAI's wire shapes the stub answers with: a completion, a stream chunk and its closing
//! frames, and each provider's error body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Rules;

pub(super) fn provider_error(rules: &Rules, status: StatusCode, message: &str) -> Response {
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

pub(super) fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "stub",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

pub(super) fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": "stub",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    });
    format!("data: {chunk}\n\n")
}

pub(super) const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"stub\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n";
pub(super) const DONE: &str = "data: [DONE]\n\n";
