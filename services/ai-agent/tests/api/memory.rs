//! Memory per caller: the 20-message bound, the per-message byte cap and the idle expiry hold for
//! unary and streamed chats alike (one history, written by the same code).

use std::time::Duration;

use flightmesh::model_stub::{Reply, Stub};
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::chat_stream;

/// One exchange through the gateway, unary (`/ai/chat`) or streamed (`/ai/chat/stream`, NDJSON)
/// → the session id.
async fn exchange(mesh: &TestMesh, streamed: bool, message: &str, session: Option<&str>) -> String {
    let mut body = json!({"message": message});
    if let Some(session) = session {
        body["session_id"] = json!(session);
    }
    if streamed {
        let (last, _) = chat_stream(mesh, &body).await;
        last["result"]["session_id"].as_str().unwrap().to_owned()
    } else {
        let (status, answer) = mesh.post("/api/v1/ai/chat", &body).await;
        assert_eq!(status, 200, "{answer}");
        answer["session_id"].as_str().unwrap().to_owned()
    }
}

async fn kept(mesh: &TestMesh, session: &str) -> Vec<(String, String)> {
    let mut redis = mesh.redis().await;
    let stored: Vec<String> = redis::cmd("LRANGE")
        .arg(format!(
            "{}ai:history:anon:{session}",
            mesh.names.redis_prefix
        ))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .unwrap();
    stored
        .iter()
        .map(|m| {
            let m: Value = serde_json::from_str(m).unwrap();
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn pttl(mesh: &TestMesh, session: &str) -> i64 {
    let mut redis = mesh.redis().await;
    redis::cmd("PTTL")
        .arg(format!(
            "{}ai:history:anon:{session}",
            mesh.names.redis_prefix
        ))
        .query_async(&mut redis)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bound_and_the_byte_cap_hold_for_unary_and_streamed_chats() {
    let stub = Stub::start().await;
    let mesh = TestMesh::start_with_model(&stub, &[("AI_HISTORY_MAX_MESSAGE_BYTES", "64")]).await;
    let long_answer: &'static str = Box::leak("á".repeat(100).into_boxed_str());

    // Unary: a 103-byte question and a 200-byte answer are kept as their first 64 bytes.
    stub.script([Reply::Text(long_answer)]);
    let session = exchange(&mesh, false, &format!("{}fin", "ñ".repeat(50)), None).await;
    assert_eq!(
        kept(&mesh, &session).await,
        [
            ("user".to_owned(), "ñ".repeat(32)),
            ("assistant".to_owned(), "á".repeat(32)),
        ]
    );
    // Streamed: 3-byte characters are cut at the last whole one (63 bytes).
    stub.script([Reply::Text(long_answer)]);
    exchange(&mesh, true, &"✈".repeat(30), Some(&session)).await;
    let history = kept(&mesh, &session).await;
    assert_eq!(history.len(), 4);
    assert_eq!(history[2], ("user".to_owned(), "✈".repeat(21)));
    assert_eq!(history[3], ("assistant".to_owned(), "á".repeat(32)));
    // What went to the model is the capped history.
    let streamed_request = stub.requests().last().unwrap().clone();
    let sent: Vec<&Value> = streamed_request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != json!("system"))
        .collect();
    assert_eq!(sent[0]["content"], json!("ñ".repeat(32)));
    assert_eq!(
        sent[2]["content"],
        json!("✈".repeat(30)),
        "the question itself is whole"
    );

    // Ten more exchanges, alternating: 24 messages written, the last 20 kept and sent.
    for i in 0..10 {
        stub.script([Reply::Text("respuesta")]);
        exchange(&mesh, i % 2 == 1, &format!("pregunta {i}"), Some(&session)).await;
    }
    let history = kept(&mesh, &session).await;
    assert_eq!(history.len(), 20);
    // The two long exchanges were the oldest four: gone.
    assert_eq!(history[0], ("user".to_owned(), "pregunta 0".to_owned()));
    assert_eq!(
        history[19],
        ("assistant".to_owned(), "respuesta".to_owned())
    );
    let last = stub.requests().last().unwrap().clone();
    assert_eq!(last["stream"], json!(true));
    let sent = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != json!("system"))
        .count();
    assert_eq!(sent, 21, "20 from history plus the new question");
    assert_eq!(stub.rejections(), Vec::<String>::new());
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_history_expires_after_its_ttl_renewed_by_unary_and_streamed_answers() {
    let mesh = TestMesh::start_with(|env, _| env.set("AI_HISTORY_TTL", "2s")).await;
    let session = exchange(&mesh, false, "hola", None).await;
    let ttl = pttl(&mesh, &session).await;
    assert!((1..=2000).contains(&ttl), "{ttl}");

    // A streamed answer 1.2 s later renews the expiry (without it, ≤ 800 ms would be left).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    exchange(&mesh, true, "¿sigues?", Some(&session)).await;
    let ttl = pttl(&mesh, &session).await;
    assert!(ttl > 1200, "renewed: {ttl}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        kept(&mesh, &session).await.len(),
        4,
        "2.4 s after the first write"
    );

    // Silence past the TTL: the history is gone.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(pttl(&mesh, &session).await, -2, "the key no longer exists");
    mesh.stop().await;
}
