//! Providers as they really are: the stub enforces Groq's documented request rules, the request
//! shape rig sends by default fails them, and the agent's own requests (unary and streamed) pass.

use flightmesh::model_stub::{Reply, Rules, Stub};
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::{chat_stream, messages, seed_cartagena};

const KEY: &str = "gsk-test-key";

/// rig 0.44's chat request as it sends it without a dialect rewrite: the preamble as an array
/// of content parts.
fn rigs_default_request() -> Value {
    json!({
        "model": "llama-3.3-70b-versatile",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Eres el asistente de la aerolínea."}]},
            {"role": "user", "content": "¿Impuestos de Cartagena?"}
        ],
        "temperature": 0.0
    })
}

/// Sends [`rigs_default_request`] straight to `groq`, with `key` as the bearer token if any.
async fn send_rigs_default_request(groq: &Stub, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/chat/completions", groq.base_url()))
        .json(&rigs_default_request());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn groq_refuses_a_content_part_system_message_with_its_400() {
    let groq = Stub::groq(KEY).await;
    let answer = send_rigs_default_request(&groq, Some(KEY)).await;
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"error": {
            "message": "'messages.0' : for 'role:system' the following must be satisfied[('messages.0.content' : value must be a string)]",
            "type": "invalid_request_error"
        }})
    );
    // Without the key: 401, as Groq answers.
    let anonymous = send_rigs_default_request(&groq, None).await;
    assert_eq!(anonymous.status(), 401);
    // The same body is fine for a compatible server (text parts are allowed there).
    assert_eq!(
        flightmesh::model_stub::check(&Rules::OpenAiCompatible, &rigs_default_request()),
        Ok(())
    );
}

/// Every message of every request, in order.
fn all_messages(requests: &[Value]) -> impl Iterator<Item = &Value> {
    requests.iter().flat_map(messages)
}

fn system_messages(requests: &[Value]) -> Vec<&Value> {
    all_messages(requests)
        .filter(|m| m["role"] == json!("system"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_requests_pass_groqs_rules_unary_and_streamed() {
    let groq = Stub::groq(KEY).await;
    let base_url = groq.base_url();
    let mesh = TestMesh::start_with(move |env, _| {
        env.set("AI_GROQ_API_KEY", KEY)
            .set("AI_GROQ_BASE_URL", base_url)
    })
    .await;
    seed_cartagena(&mesh).await;
    let round = [
        Reply::tool_call("call_1", "market_data", json!({"destination": "Cartagena"})),
        Reply::Text("Cartagena paga 50.00 de impuestos."),
    ];
    // The same round twice: unary, then streamed.
    groq.script([round.clone(), round].concat());

    let (status, body) = mesh
        .post(
            "/api/v1/ai/chat",
            &json!({"message": "¿Impuestos de Cartagena?"}),
        )
        .await;
    assert_eq!(
        (status, &body["response"]),
        (200, &json!("Cartagena paga 50.00 de impuestos.")),
        "{body}"
    );
    let session = body["session_id"].as_str().unwrap();

    // Streamed, continuing the conversation (so the history's assistant message goes too).
    let (last, text) = chat_stream(
        &mesh,
        &json!({"message": "¿Y otra vez?", "session_id": session}),
    )
    .await;
    assert_eq!(
        last["result"]["response"],
        json!("Cartagena paga 50.00 de impuestos."),
        "{text}"
    );
    assert_eq!(last["result"]["tools_used"], json!(["market_data"]));

    assert_eq!(groq.rejections(), Vec::<String>::new());
    let requests = groq.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        requests
            .iter()
            .map(|r| r["stream"] == json!(true))
            .collect::<Vec<_>>(),
        [false, false, true, true]
    );
    let systems = system_messages(&requests);
    assert_eq!(systems.len(), 4);
    assert!(
        systems.iter().all(|m| m["content"]
            .as_str()
            .is_some_and(|c| c.contains("aerolínea"))),
        "the preamble goes as one string: {systems:?}"
    );
    // Every assistant message (the history's answer, the tool call turn) is a string or null.
    for message in all_messages(&requests).filter(|m| m["role"] == json!("assistant")) {
        assert!(
            message["content"].is_string() || message["content"].is_null(),
            "{message}"
        );
    }
    mesh.stop().await;
}
