//! Semantic destination search against the real mesh: `embed-destination` and
//! `search-destinations` over REST, the offline embedder and an OpenAI-compatible embeddings
//! endpoint (a strict stub), models never mixed, `reembed`, the agent's tool, the offline
//! answerer's "where can I…" answers, and the catalog event a description change emits.

use std::time::Duration;

use flightmesh::embeddings_stub::{EmbeddingReply, EmbeddingsStub};
use flightmesh::model_stub::{Reply, Stub};
use flightmesh::testing::{TestMesh, eventually};
use flightmesh_ai_agent::embeddings::{OFFLINE_MODEL, offline_embedding};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    DestinationEvent, PutDestinationEmbeddingRequest, SearchDestinationEmbeddingsRequest,
};
use flightmesh_runtime::Env;
use prost::Message;
use serde_json::{Value, json};

use crate::{chat, chat_stream, offered_tools, tool_output};

const DIVING: &str = "Playas de arena blanca, buceo y snorkel en arrecifes de coral, diving";
const SKIING: &str = "Esquí en montañas nevadas, pistas de nieve y refugios alpinos";

/// Two destinations with clearly different descriptions: (diving id, skiing id).
async fn two_destinations(mesh: &TestMesh) -> (i64, i64) {
    let coral = mesh.destination("Isla Coral", 30.0, false, true).await;
    let nevado = mesh.destination("Nevado Alto", 20.0, false, false).await;
    (coral, nevado)
}

/// `POST /api/v1/ai/embed-destination?destination_id=…&description=…` (query only, no body).
async fn embed(mesh: &TestMesh, id: &str, description: Option<&str>) -> (u16, Value) {
    let mut query = vec![("destination_id", id)];
    if let Some(description) = description {
        query.push(("description", description));
    }
    let response = mesh
        .http
        .post(mesh.url(&format!("/api/v1/ai/embed-destination?{}", encode(&query))))
        .send()
        .await
        .unwrap();
    flightmesh::testing::status_and_json(response).await
}

/// `GET /api/v1/ai/search-destinations` with these query parameters.
async fn search(mesh: &TestMesh, query: &[(&str, &str)]) -> (u16, Value) {
    let response = mesh
        .http
        .get(mesh.url(&format!("/api/v1/ai/search-destinations?{}", encode(query))))
        .send()
        .await
        .unwrap();
    flightmesh::testing::status_and_json(response).await
}

/// A query string, percent-encoded.
fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn names(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

async fn embed_both(mesh: &TestMesh, coral: i64, nevado: i64) {
    for (id, description) in [(coral, DIVING), (nevado, SKIING)] {
        let (status, body) = embed(mesh, &id.to_string(), Some(description)).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"status": "ok", "message": format!("Embedding almacenado para destino {id}")})
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_sharing_words_with_a_description_ranks_it_first() {
    let mesh = TestMesh::start().await;
    let (coral, nevado) = two_destinations(&mesh).await;
    embed_both(&mesh, coral, nevado).await;

    let (status, body) = search(&mesh, &[("query", "¿Dónde puedo bucear en arrecifes?")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Isla Coral", "Nevado Alto"]);
    let first = &body["results"][0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "description", "similarity"]);
    assert_eq!(
        (&first["id"], &first["description"]),
        (&json!(coral), &json!(DIVING))
    );
    let similarities: Vec<f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(similarities[0] > similarities[1] + 0.2, "{similarities:?}");
    for s in &similarities {
        assert!((-1.0..=1.0).contains(s), "{s}");
        // Four decimal places at most.
        assert!(((s * 10_000.0).round() - s * 10_000.0).abs() < 1e-6, "{s}");
    }

    let (_, body) = search(&mesh, &[("query", "esquiar en la nieve"), ("limit", "1")]).await;
    assert_eq!(names(&body), ["Nevado Alto"]);

    // The description is the catalog's now: get and list return it.
    let (_, destination) = mesh
        .get(&format!("/api/v1/flights/destinations/{coral}"))
        .await;
    assert_eq!(destination["description"], json!(DIVING));
    let (_, list) = mesh.get("/api/v1/flights/destinations/").await;
    assert_eq!(list[1]["description"], json!(SKIING), "{list}");

    // A new description replaces the old vector.
    let (status, _) = embed(
        &mesh,
        &nevado.to_string(),
        Some("buceo en cuevas submarinas"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = search(&mesh, &[("query", "esquí nieve")]).await;
    assert!(
        body["results"][0]["similarity"].as_f64().unwrap() < 0.2,
        "{body}"
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn embed_and_search_answer_the_contracts_errors() {
    let mesh = TestMesh::start().await;
    let (coral, _) = two_destinations(&mesh).await;

    let (status, body) = embed(&mesh, "999999", Some(DIVING)).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "El destino no existe."}))
    );

    let (status, body) = embed(&mesh, &coral.to_string(), Some("   ")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["query", "description"]),
        "{body}"
    );
    assert_eq!(
        body["detail"][0]["msg"],
        json!("description no puede estar vacio")
    );
    let (status, body) = embed(&mesh, &coral.to_string(), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "description"]));
    let (status, body) = embed(&mesh, "abc", Some(DIVING)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "destination_id"]));
    // Only function words or symbols: stored all the same (embedded from what is there); only a
    // blank description is refused.
    for text in ["¿de la?", "¡¡!!"] {
        let (status, body) = embed(&mesh, &coral.to_string(), Some(text)).await;
        assert_eq!(status, 200, "{text} {body}");
    }

    for query in [vec![], vec![("query", "  ")]] {
        let (status, body) = search(&mesh, &query).await;
        assert_eq!(status, 422, "{query:?} {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "query"]));
    }
    for limit in ["0", "51", "muchos"] {
        let (status, body) = search(&mesh, &[("query", "playa"), ("limit", limit)]).await;
        assert_eq!(status, 422, "{limit} {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "limit"]));
    }
    // Only the symbols were stored: nothing in common with the query.
    let (status, body) = search(&mesh, &[("query", "playa"), ("limit", "50")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["description"], "¡¡!!");
    assert_eq!(body["results"][0]["similarity"], 0.0);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offline_answerer_answers_where_questions_from_the_search() {
    let mesh = TestMesh::start().await;
    let (coral, nevado) = two_destinations(&mesh).await;
    embed_both(&mesh, coral, nevado).await;

    let (status, body) = chat(&mesh, "¿Dónde puedo ir a bucear?", "w").await;
    assert_eq!(status, 200, "{body}");
    let answer = body["response"].as_str().unwrap();
    assert!(answer.contains("Isla Coral"), "{answer}");
    assert!(!answer.contains("Nevado Alto"), "{answer}");

    let (_, body) = chat(&mesh, "Where can I go diving?", "w").await;
    let answer = body["response"].as_str().unwrap();
    assert!(answer.contains("Isla Coral"), "{answer}");

    let (_, body) = chat(
        &mesh,
        "¿Qué destino me recomiendas para esquiar en la nieve?",
        "w",
    )
    .await;
    let answer = body["response"].as_str().unwrap();
    assert!(answer.contains("Nevado Alto"), "{answer}");
    assert!(!answer.contains("Isla Coral"), "{answer}");

    // Streamed (NDJSON), the same answer, with the search among the tools consulted.
    let (last, text) = chat_stream(&mesh, &json!({"message": "¿Dónde puedo ir a bucear?"})).await;
    let streamed = last["result"]["response"].as_str().unwrap();
    assert!(streamed.contains("Isla Coral"), "{text}");
    assert!(!streamed.contains("Nevado Alto"), "{text}");
    assert_eq!(
        last["result"]["tools_used"],
        json!(["search_destinations"]),
        "{text}"
    );

    let (_, body) = chat(&mesh, "¿Dónde puedo ver auroras boreales?", "w").await;
    assert_eq!(
        body["response"],
        json!("No encontré destinos cuya descripción coincida con lo que busca.")
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_calls_search_destinations_and_answers_with_the_names_it_returned() {
    let stub = Stub::start().await;
    let mesh = TestMesh::start_with_model(&stub, &[("AI_AI_MODEL", "stub-model")]).await;
    let (coral, nevado) = two_destinations(&mesh).await;
    embed_both(&mesh, coral, nevado).await;
    stub.script([
        Reply::tool_call(
            "call_s",
            "search_destinations",
            json!({"query": "bucear en arrecifes de coral"}),
        ),
        Reply::Text("Para bucear le recomiendo Isla Coral."),
    ]);

    let (status, body) = chat(&mesh, "¿Dónde puedo ir a bucear?", "m").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["response"].as_str().unwrap().contains("Isla Coral"));

    let requests = stub.requests();
    let tools = offered_tools(&requests[0]);
    assert!(tools.contains(&"search_destinations"), "{tools:?}");
    let content = tool_output(&requests[1], "call_s");
    assert_eq!(content["destinations"][0]["name"], json!("Isla Coral"));
    assert_eq!(content["destinations"][0]["id"], json!(coral));
    mesh.stop().await;
}

async fn mesh_with_embeddings(stub: &EmbeddingsStub, key: &str, timeout: &str) -> TestMesh {
    let (base_url, key, timeout) = (stub.base_url(), key.to_owned(), timeout.to_owned());
    TestMesh::start_with(move |env, _| {
        env.set("AI_EMBEDDINGS_BASE_URL", base_url)
            .set("AI_EMBEDDINGS_MODEL", "stub-embed")
            .set("AI_EMBEDDINGS_API_KEY", key)
            .set("AI_EMBEDDINGS_TIMEOUT", timeout)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_embeddings_pass_the_openai_rules_and_take_their_width_from_the_answer() {
    let stub = EmbeddingsStub::start(24, Some("emb-key")).await;
    let mesh = mesh_with_embeddings(&stub, "emb-key", "5s").await;
    let (coral, nevado) = two_destinations(&mesh).await;
    embed_both(&mesh, coral, nevado).await;

    let (status, body) = search(&mesh, &[("query", "arrecifes de coral y buceo")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body)[0], "Isla Coral");

    assert!(stub.rejected().is_empty(), "{:?}", stub.rejected());
    let requests = stub.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0],
        json!({"model": "stub-embed", "input": [DIVING]}),
        "exactly the OpenAI fields, no width asked for"
    );
    assert_eq!(
        requests[2],
        json!({"model": "stub-embed", "input": ["arrecifes de coral y buceo"]})
    );

    // Stored under the model's name, 24 wide (the answer's width): a 24-dim query of that
    // model finds them, a query of the same width under another model finds nothing.
    let mut flights = FlightServiceClient::new(mesh.channel(mesh.addrs.flights).await);
    let vector = flightmesh::embeddings_stub::bag_of_words(DIVING, 24)
        .into_iter()
        .map(|x| x as f32)
        .collect::<Vec<f32>>();
    let found = |model: &str| SearchDestinationEmbeddingsRequest {
        model: model.to_owned(),
        vector: vector.clone(),
        limit: Some(5),
    };
    let matches = flights
        .search_destination_embeddings(found("stub-embed"))
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert_eq!(matches.len(), 2);
    assert!((matches[0].similarity - 1.0).abs() < 1e-6);
    let other = flights
        .search_destination_embeddings(found(OFFLINE_MODEL))
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(other.is_empty());
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_provider_errors_map_to_the_contracts_statuses() {
    let stub = EmbeddingsStub::start(8, Some("emb-key")).await;
    let mesh = mesh_with_embeddings(&stub, "emb-key", "500ms").await;
    let (coral, _) = two_destinations(&mesh).await;
    let id = coral.to_string();
    let cases = [
        (EmbeddingReply::Status(500), 503),
        (EmbeddingReply::Status(503), 503),
        (EmbeddingReply::Status(429), 503),
        (EmbeddingReply::Status(401), 500),
        (EmbeddingReply::Status(400), 500),
        (EmbeddingReply::Malformed, 500),
        (EmbeddingReply::Slow(Duration::from_secs(2)), 504),
    ];
    for (reply, expected) in cases {
        stub.script([reply.clone()]);
        let (status, body) = embed(&mesh, &id, Some(DIVING)).await;
        assert_eq!(status, expected, "{reply:?}: {body}");
        assert!(body["detail"].is_string(), "{body}");
        assert!(!body.to_string().contains("scripted"), "{body}");
    }
    // The search fails the same way.
    stub.script([EmbeddingReply::Status(502)]);
    let (status, _) = search(&mesh, &[("query", "playa")]).await;
    assert_eq!(status, 503);
    // And nothing was stored by the failures: the next success is the first vector.
    let (status, _) = embed(&mesh, &id, Some(DIVING)).await;
    assert_eq!(status, 200);
    mesh.stop().await;

    // A wrong key is the provider's 401: a 500, the key never echoed.
    let mesh = mesh_with_embeddings(&stub, "wrong-key", "5s").await;
    let (coral, _) = two_destinations(&mesh).await;
    let (status, body) = embed(&mesh, &coral.to_string(), Some(DIVING)).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.to_string().contains("wrong-key"));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vectors_of_another_model_are_never_compared_until_reembedded() {
    let stub = EmbeddingsStub::start(16, None).await;
    let mesh = mesh_with_embeddings(&stub, "", "5s").await;
    let (coral, nevado) = two_destinations(&mesh).await;

    // The catalog holds offline vectors (model A), e.g. from before the embedder changed.
    let mut flights = FlightServiceClient::new(mesh.channel(mesh.addrs.flights).await);
    for (id, description) in [(coral, DIVING), (nevado, SKIING)] {
        flights
            .put_destination_embedding(PutDestinationEmbeddingRequest {
                destination_id: id,
                description: description.to_owned(),
                model: OFFLINE_MODEL.to_owned(),
                vector: offline_embedding(description),
                replace_description: true,
            })
            .await
            .unwrap();
    }
    // The agent now embeds with model B: A's vectors are not candidates.
    let (status, body) = search(&mesh, &[("query", "buceo en arrecifes de coral")]).await;
    assert_eq!((status, body), (200, json!({"results": []})));

    // `ai-agent reembed` with the agent's configuration re-embeds both with B.
    let config = flightmesh_ai_agent::Config::from_env(&Env::from_pairs([
        ("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights)),
        ("EMBEDDINGS_BASE_URL", stub.base_url()),
        ("EMBEDDINGS_MODEL", "stub-embed".to_owned()),
    ]))
    .unwrap();
    let mut progress = Vec::new();
    let report =
        flightmesh_ai_agent::reembed_in_batches(&config, 1, |model, done, total, so_far| {
            progress.push((model.to_owned(), done, total, so_far.stored));
        })
        .await
        .unwrap();
    assert_eq!((report.stored, report.skipped), (2, 0));
    // In batches (of one here), each followed by its progress.
    let model = || "stub-embed".to_owned();
    assert_eq!(progress, [(model(), 1, 2, 1), (model(), 2, 2, 2)]);
    let (status, body) = search(&mesh, &[("query", "buceo en arrecifes de coral")]).await;
    assert_eq!(status, 200);
    assert_eq!(names(&body), ["Isla Coral", "Nevado Alto"]);
    // The descriptions were kept, and A's vectors are gone.
    assert_eq!(body["results"][0]["description"], json!(DIVING));
    let a = flights
        .search_destination_embeddings(SearchDestinationEmbeddingsRequest {
            model: OFFLINE_MODEL.to_owned(),
            vector: offline_embedding(DIVING),
            limit: Some(5),
        })
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(a.is_empty());
    // The command itself (batches of REEMBED_BATCH): again is harmless.
    let report = flightmesh_ai_agent::reembed(&config).await.unwrap();
    assert_eq!((report.stored, report.skipped), (2, 0));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_description_change_is_a_catalog_event_the_stats_worker_ignores() {
    let mesh = TestMesh::start().await;
    let (coral, _) = two_destinations(&mesh).await;

    // A queue of the test's own on the catalog exchange, for `destination.described`.
    let connection = flightmesh_events::amqp::connect(
        &flightmesh_runtime::config::Secret::new(flightmesh::testing::AMQP_URL.to_owned()),
        "search test",
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    flightmesh_events::amqp::declare_event_exchange(&channel, &mesh.names.catalog_exchange)
        .await
        .unwrap();
    let queue = format!("{}.described", mesh.names.catalog_exchange);
    channel
        .queue_declare(
            queue.as_str().into(),
            // Gone with this connection (it is read with `basic_get`, which never subscribes, so
            // `auto_delete` would keep it).
            lapin::options::QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            mesh.names.catalog_exchange.as_str().into(),
            "destination.described".into(),
            lapin::options::QueueBindOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();

    embed_both_one(&mesh, coral, DIVING).await;
    // The same description again changes nothing: no second event.
    embed_both_one(&mesh, coral, DIVING).await;

    let get = || async {
        channel
            .basic_get(
                queue.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
            .map(|message| DestinationEvent::decode(message.delivery.data.as_slice()).unwrap())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let event = loop {
        if let Some(event) = get().await {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no destination.described event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            event.event_type.as_str(),
            event.destination_id,
            event.destination_name.as_str(),
            event.description.as_str()
        ),
        ("destination.described", coral, "Isla Coral", DIVING)
    );
    // Give a second (wrong) event time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        get().await.is_none(),
        "an unchanged description emitted an event"
    );

    // The stats worker binds only the catalog events it uses: nothing dead-lettered, and it
    // still applies the ones it does (a promotion destination raises an alert).
    let (status, dead) = mesh.get("/api/v1/stats/dead-letters").await;
    assert_eq!((status, &dead["count"]), (200, &json!(0)), "{dead}");
    mesh.destination("Promo Playa", 10.0, true, true).await;
    eventually(Duration::from_secs(20), || async {
        mesh.redis_get("stats:promotion_alerts_sent")
            .await
            .is_some()
    })
    .await;
    let (_, dead) = mesh.get("/api/v1/stats/dead-letters").await;
    assert_eq!(dead["count"], json!(0), "{dead}");
    connection.close(0, "done".into()).await.ok();
    mesh.stop().await;
}

async fn embed_both_one(mesh: &TestMesh, id: i64, description: &str) {
    let (status, body) = embed(mesh, &id.to_string(), Some(description)).await;
    assert_eq!(status, 200, "{body}");
}
