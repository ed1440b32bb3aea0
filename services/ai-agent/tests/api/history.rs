//! Chat history: per session, in Redis, the last 20 messages, shared by every replica.

use flightmesh::testing::{TestMesh, test_env};
use serde_json::{Value, json};

use crate::chat;
use flightmesh::model_stub::{Reply, Stub};

fn sent_messages(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != json!("system"))
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_carries_its_last_twenty_messages_across_replicas() {
    let stub = Stub::start().await;
    let base_url = stub.base_url();
    let mesh = TestMesh::start_with(move |env, _| env.set("AI_AI_BASE_URL", base_url)).await;

    stub.script([
        Reply::Text("Hola, ¿en qué te ayudo?"),
        Reply::Text("Claro."),
    ]);
    chat(&mesh, "Hola", "ana").await;
    chat(&mesh, "¿Y Cartagena?", "ana").await;
    let second = &stub.requests()[1];
    assert_eq!(
        sent_messages(second),
        [
            ("user".to_owned(), "Hola".to_owned()),
            ("assistant".to_owned(), "Hola, ¿en qué te ayudo?".to_owned()),
            ("user".to_owned(), "¿Y Cartagena?".to_owned()),
        ]
    );
    // Another session starts empty.
    stub.script([Reply::Text("ok")]);
    chat(&mesh, "Hola", "luis").await;
    assert_eq!(sent_messages(&stub.requests()[2]).len(), 1);

    // 25 exchanges: only the last 20 messages go along.
    for i in 0..25 {
        stub.script([Reply::Text("respuesta")]);
        let (status, _) = chat(&mesh, &format!("pregunta {i}"), "long").await;
        assert_eq!(status, 200);
    }
    let last = stub.requests().last().unwrap().clone();
    let sent = sent_messages(&last);
    assert_eq!(sent.len(), 21, "20 from history plus the new question");
    assert_eq!(sent[0], ("user".to_owned(), "pregunta 14".to_owned()));
    assert_eq!(sent[20], ("user".to_owned(), "pregunta 24".to_owned()));

    // A second agent replica (same Redis) continues the same session.
    let env = test_env(&mesh.db, &mesh.isolation())
        .set("GRPC_ADDR", "127.0.0.1:0")
        .set("ADMIN_ADDR", "127.0.0.1:0")
        .set("AI_BASE_URL", stub.base_url())
        .set("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights))
        .set("STATS_URL", format!("http://{}", mesh.addrs.stats));
    let replica =
        flightmesh_ai_agent::Service::build(flightmesh_ai_agent::Config::from_env(&env).unwrap())
            .await
            .unwrap();
    let replica_addr = replica.grpc_addr();
    let stop = flightmesh_runtime::CancellationToken::new();
    tokio::spawn(replica.run(stop.clone()));
    let mut client = flightmesh_proto::ai::ai_agent_service_client::AiAgentServiceClient::new(
        mesh.channel(replica_addr).await,
    );
    stub.script([Reply::Text("Sí, desde la otra réplica.")]);
    client
        .chat(flightmesh_proto::ai::ChatRequest {
            message: "¿Sigues ahí?".into(),
            session_id: Some("ana".into()),
        })
        .await
        .unwrap();
    let from_replica = sent_messages(stub.requests().last().unwrap());
    assert_eq!(from_replica[0], ("user".to_owned(), "Hola".to_owned()));
    assert_eq!(from_replica.len(), 5);
    stop.cancel();
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_missing_message_is_422() {
    let mesh = TestMesh::start().await;
    let (status, body) = mesh
        .post("/api/v1/ai/chat", &json!({"message": "   "}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "message"]));
    assert_eq!(
        body["detail"][0]["msg"],
        json!("message no puede estar vacio")
    );
    let (status, body) = mesh
        .post("/api/v1/ai/chat", &json!({"session_id": "x"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], json!("missing"));
    let (status, _) = mesh
        .post("/api/v1/ai/suggest-price", &json!({"destination_name": ""}))
        .await;
    assert_eq!(status, 422);
    mesh.stop().await;
}
