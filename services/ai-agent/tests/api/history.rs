//! Chat history: per conversation of one caller, in Redis, the last 20 messages, shared by every
//! replica; never shared between callers.

use flightmesh::testing::{Replica, TestMesh, test_env};
use flightmesh_proto::ai::ai_agent_service_client::AiAgentServiceClient;
use flightmesh_proto::ai::{ChatRequest, ChatResponse};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{ask, chat, messages};
use flightmesh::model_stub::{Reply, Stub};

fn sent_messages(request: &Value) -> Vec<(String, String)> {
    messages(request)
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

/// POST /api/v1/ai/chat anonymously, continuing `session` if given → (status, body, session id).
async fn chat_as_anonymous(
    mesh: &TestMesh,
    message: &str,
    session: Option<&str>,
) -> (u16, Value, String) {
    let mut body = json!({"message": message});
    if let Some(session) = session {
        body["session_id"] = json!(session);
    }
    let (status, answer) = ask(mesh, "chat", body).await;
    let issued = answer["session_id"].as_str().unwrap_or_default().to_owned();
    (status, answer, issued)
}

/// Chats over gRPC as user `user_id`, the way the gateway forwards a verified caller, or
/// anonymously (`None`).
async fn grpc_chat(
    client: &mut AiAgentServiceClient<Channel>,
    user_id: Option<&str>,
    message: &str,
    session: Option<&str>,
) -> ChatResponse {
    let mut request = tonic::Request::new(ChatRequest {
        message: message.into(),
        session_id: session.map(str::to_owned),
    });
    if let Some(user_id) = user_id {
        request
            .metadata_mut()
            .insert("x-user-id", user_id.parse().unwrap());
        request
            .metadata_mut()
            .insert("x-user-role", "user".parse().unwrap());
    }
    client.chat(request).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_carries_its_last_twenty_messages_across_replicas() {
    let stub = Stub::start().await;
    let mesh = TestMesh::start_with_model(&stub, &[]).await;

    stub.script([
        Reply::Text("Hola, ¿en qué te ayudo?"),
        Reply::Text("Claro."),
    ]);
    let (status, _, ana) = chat_as_anonymous(&mesh, "Hola", None).await;
    assert_eq!(status, 200);
    let (_, _, continued) = chat_as_anonymous(&mesh, "¿Y Cartagena?", Some(&ana)).await;
    assert_eq!(continued, ana, "the issued session is kept");
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
    let mut long: Option<String> = None;
    for i in 0..25 {
        stub.script([Reply::Text("respuesta")]);
        let (status, _, session) =
            chat_as_anonymous(&mesh, &format!("pregunta {i}"), long.as_deref()).await;
        assert_eq!(status, 200);
        long = Some(session);
    }
    let last = stub.requests().last().unwrap().clone();
    let sent = sent_messages(&last);
    assert_eq!(sent.len(), 21, "20 from history plus the new question");
    assert_eq!(sent[0], ("user".to_owned(), "pregunta 14".to_owned()));
    assert_eq!(sent[20], ("user".to_owned(), "pregunta 24".to_owned()));

    // A second agent replica (same Redis) continues the same session.
    let env = test_env(&mesh.db, &mesh.names)
        .set("AI_BASE_URL", stub.base_url())
        .set("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights))
        .set("STATS_URL", format!("http://{}", mesh.addrs.stats));
    let replica = flightmesh_ai_agent::build(flightmesh_ai_agent::Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let replica = Replica::start(replica);
    let mut client = AiAgentServiceClient::new(mesh.channel(replica.addr).await);
    stub.script([Reply::Text("Sí, desde la otra réplica.")]);
    let answer = grpc_chat(&mut client, None, "¿Sigues ahí?", Some(&ana)).await;
    assert_eq!(answer.session_id, ana);
    let from_replica = sent_messages(stub.requests().last().unwrap());
    assert_eq!(from_replica[0], ("user".to_owned(), "Hola".to_owned()));
    assert_eq!(from_replica.len(), 5);
    replica.stop().await;
    mesh.stop().await;
}

/// The model stub scripted with these text answers, a mesh whose agent talks to it, and a gRPC
/// client of the agent.
async fn grpc_chat_against_the_stub(
    answers: &[&'static str],
) -> (Stub, TestMesh, AiAgentServiceClient<Channel>) {
    let stub = Stub::start().await;
    let mesh = TestMesh::start_with_model(&stub, &[]).await;
    let client = AiAgentServiceClient::new(mesh.channel(mesh.addrs.ai).await);
    stub.script(answers.iter().map(|&answer| Reply::Text(answer)));
    (stub, mesh, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_signed_in_users_without_a_session_never_share_history() {
    let (stub, mesh, mut client) =
        grpc_chat_against_the_stub(&["Anotado, Ana.", "Hola, Luis.", "Tu reserva es la 41."]).await;

    let ana = grpc_chat(&mut client, Some("7"), "Soy Ana, mi reserva es la 41", None).await;
    assert_eq!(ana.session_id, "default");
    // The old shared "default" list: Luis, with or without naming it, starts empty.
    grpc_chat(
        &mut client,
        Some("8"),
        "¿Qué reserva tengo?",
        Some("default"),
    )
    .await;
    assert_eq!(
        sent_messages(&stub.requests()[1]),
        [("user".to_owned(), "¿Qué reserva tengo?".to_owned())]
    );
    // Ana's own conversation continues.
    grpc_chat(&mut client, Some("7"), "¿Cuál es mi reserva?", None).await;
    let third = sent_messages(&stub.requests()[2]);
    assert_eq!(third.len(), 3, "{third:?}");
    assert_eq!(
        third[0],
        ("user".to_owned(), "Soy Ana, mi reserva es la 41".to_owned())
    );
    assert!(
        third.iter().all(|(_, text)| !text.contains("Luis")),
        "{third:?}"
    );

    // Anonymous callers (compatible policy): each call without a session gets its own.
    stub.script([Reply::Text("uno"), Reply::Text("dos")]);
    let first = grpc_chat(&mut client, None, "Soy Eva", None).await;
    let second = grpc_chat(&mut client, None, "¿Quién soy?", None).await;
    assert_ne!(first.session_id, second.session_id);
    for issued in [&first.session_id, &second.session_id] {
        assert!(flightmesh_ai_agent::history::is_issued(issued), "{issued}");
    }
    assert_eq!(
        sent_messages(stub.requests().last().unwrap()),
        [("user".to_owned(), "¿Quién soy?".to_owned())]
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_never_opens_another_callers_conversation() {
    let (stub, mesh, mut client) =
        grpc_chat_against_the_stub(&["Anotado.", "No lo sé.", "No lo sé.", "No lo sé."]).await;

    grpc_chat(
        &mut client,
        Some("7"),
        "Mi pasaporte es X123",
        Some("viaje"),
    )
    .await;
    // User 8 names user 7's session.
    let answer = grpc_chat(
        &mut client,
        Some("8"),
        "¿Cuál es mi pasaporte?",
        Some("viaje"),
    )
    .await;
    assert_eq!(answer.session_id, "viaje");
    assert_eq!(
        sent_messages(&stub.requests()[1]),
        [("user".to_owned(), "¿Cuál es mi pasaporte?".to_owned())]
    );
    // So does an anonymous caller, by name: it gets a fresh session instead.
    let (status, body, issued) =
        chat_as_anonymous(&mesh, "¿Cuál es mi pasaporte?", Some("viaje")).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(issued, "viaje");
    assert_eq!(sent_messages(&stub.requests()[2]).len(), 1);
    // An anonymous conversation is not readable by a signed-in user who learns its id.
    let anonymous_stub_calls = stub.requests().len();
    grpc_chat(&mut client, Some("8"), "¿Y ahora?", Some(&issued)).await;
    assert_eq!(
        sent_messages(&stub.requests()[anonymous_stub_calls]),
        [("user".to_owned(), "¿Y ahora?".to_owned())]
    );

    // Keys keep the configured prefix, under the caller.
    let mut redis = mesh.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}ai:history:*", mesh.names.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut keys: Vec<String> = keys
        .into_iter()
        .map(|k| k.trim_start_matches(&mesh.names.redis_prefix).to_owned())
        .collect();
    keys.sort();
    let mut expected = vec![
        format!("ai:history:anon:{issued}"),
        "ai:history:user:7:viaje".to_owned(),
        "ai:history:user:8:viaje".to_owned(),
        format!("ai:history:user:8:{issued}"),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    mesh.stop().await;
}

#[test]
fn history_messages_zero_is_refused_at_start() {
    let env = flightmesh_runtime::Env::from_pairs([("HISTORY_MESSAGES", "0")]);
    let err = flightmesh_ai_agent::Config::from_env(&env)
        .expect_err("0 would keep every message")
        .to_string();
    assert!(err.contains("HISTORY_MESSAGES"), "{err}");
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
