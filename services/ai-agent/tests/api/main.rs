//! The AI agent against the real flights and stats services, with a local OpenAI-compatible stub
//! playing the model (tool calls included), or the offline answerer.

mod history;
mod memory;
mod model;
mod offline;
mod providers;
mod search;

use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

/// Seeds Cartagena (tax 50, promotion, pets) with two flights (1000 and 500.01).
pub async fn seed_cartagena(mesh: &TestMesh) -> i64 {
    let cartagena = mesh.destination("Cartagena", 50.0, true, true).await;
    mesh.flight("CT-1", 1000.0, cartagena, 100).await;
    mesh.flight("CT-2", 500.01, cartagena, 100).await;
    cartagena
}

/// POST /api/v1/ai/<path>.
pub async fn ask(mesh: &TestMesh, path: &str, body: Value) -> (u16, Value) {
    mesh.post(&format!("/api/v1/ai/{path}"), &body).await
}

/// POST /api/v1/ai/<path> about one destination (`suggest-price`, `predict-demand`).
pub async fn about(mesh: &TestMesh, path: &str, destination: &str) -> (u16, Value) {
    ask(mesh, path, json!({ "destination_name": destination })).await
}

/// POST /api/v1/ai/chat with a message and a session.
pub async fn chat(mesh: &TestMesh, message: &str, session: &str) -> (u16, Value) {
    ask(
        mesh,
        "chat",
        json!({"message": message, "session_id": session}),
    )
    .await
}

/// POST /api/v1/ai/chat/stream (NDJSON) → its last line, which must say `done`, and the whole
/// text (for assertion messages).
pub async fn chat_stream(mesh: &TestMesh, body: &Value) -> (Value, String) {
    let response = mesh
        .http
        .post(mesh.url("/api/v1/ai/chat/stream"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["result"]["done"], json!(true), "{text}");
    (last, text)
}

/// The messages of a request the model received.
pub fn messages(request: &Value) -> &Vec<Value> {
    request["messages"].as_array().unwrap()
}

/// The names of the tools a request offered the model.
pub fn offered_tools(request: &Value) -> Vec<&str> {
    request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect()
}

/// The tool result the agent sent back to the model in `request`.
pub fn tool_result(request: &Value) -> &Value {
    messages(request)
        .iter()
        .find(|m| m["role"] == json!("tool"))
        .expect("a tool message")
}

/// The result of tool call `id` that the agent sent back to the model in `request`, parsed.
pub fn tool_output(request: &Value, id: &str) -> Value {
    let result = tool_result(request);
    assert_eq!(result["tool_call_id"], json!(id));
    serde_json::from_str(result["content"].as_str().unwrap()).unwrap()
}

flightmesh_testkit::command_line_test!("ai-agent", ["serve", "reembed", "config"]);
