//! The model path: tool definitions sent, tools executed against the real services, results sent
//! back, failures mapped to the contract's statuses.

use std::time::Duration;

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::{about, chat, messages, offered_tools, seed_cartagena, tool_output, tool_result};
use flightmesh::model_stub::{Reply, Stub};

async fn mesh_with(stub: &Stub, timeout: &str) -> TestMesh {
    TestMesh::start_with_model(
        stub,
        &[("AI_AI_MODEL", "stub-model"), ("AI_AI_TIMEOUT", timeout)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_calls_a_tool_that_reads_the_real_catalog() {
    let stub = Stub::start().await;
    let mesh = mesh_with(&stub, "10s").await;
    seed_cartagena(&mesh).await;
    stub.script([
        Reply::tool_call("call_1", "market_data", json!({"destination": "cartagena"})),
        Reply::Text("Viajar a Cartagena cuesta 50.00 de impuestos."),
    ]);

    let (status, body) = chat(
        &mesh,
        "¿Cuánto cuestan los impuestos para viajar a Cartagena?",
        "s1",
    )
    .await;
    assert_eq!(
        (status, &body["response"]),
        (200, &json!("Viajar a Cartagena cuesta 50.00 de impuestos."))
    );
    // "s1" was not issued by the server: the anonymous caller gets a session of its own.
    let session = body["session_id"].as_str().unwrap();
    assert!(flightmesh_ai_agent::history::is_issued(session), "{body}");

    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["model"], json!("stub-model"));
    assert_eq!(first["temperature"], json!(0.0));
    let tools = offered_tools(first);
    for tool in [
        "market_data",
        "demand_statistics",
        "demand_prediction",
        "search_flights",
    ] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
    assert_eq!(
        messages(first).last().unwrap()["content"],
        json!("¿Cuánto cuestan los impuestos para viajar a Cartagena?")
    );

    // The tool ran against the flights service; its result went back with the call's id.
    let content = tool_output(&requests[1], "call_1");
    assert_eq!(content["destination"], json!("Cartagena"));
    assert_eq!(content["tax_amount"], json!("50.00"));
    assert_eq!(content["average_base_price"], json!("750.01"));
    assert_eq!(
        (
            content["is_promotion"].clone(),
            content["flight_count"].clone()
        ),
        (json!(true), json!(2))
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_destinations_and_failing_tools_are_results_the_model_reads() {
    let stub = Stub::start().await;
    let mesh = mesh_with(&stub, "10s").await;
    stub.script([
        Reply::tool_call(
            "call_9",
            "demand_prediction",
            json!({"destination": "Atlantis"}),
        ),
        Reply::Text("No tengo datos de Atlantis."),
    ]);
    let (status, _) = about(&mesh, "predict-demand", "Atlantis").await;
    assert_eq!(status, 200);
    assert!(
        tool_result(&stub.requests()[1])["content"]
            .as_str()
            .unwrap()
            .contains("No se encontró información para el destino Atlantis.")
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_failures_get_the_contracts_statuses_and_the_service_keeps_serving() {
    let stub = Stub::start().await;
    let mesh = mesh_with(&stub, "1s").await;
    // Each provider failure, and the contract's answer to it.
    for (reply, status, detail) in [
        (Reply::Status(500), 500, "Error procesando solicitud de IA"),
        (Reply::Malformed, 500, "Error procesando solicitud de IA"),
        (
            Reply::Status(429),
            503,
            "El servicio de IA esta saturado. Intente de nuevo en unos segundos.",
        ),
        (
            Reply::Slow(Duration::from_secs(3), "too late"),
            504,
            "El servicio de IA tardo demasiado en responder. Intente de nuevo.",
        ),
    ] {
        stub.script([reply.clone()]);
        assert_eq!(
            chat(&mesh, "hola", "f").await,
            (status, json!({ "detail": detail })),
            "{reply:?}"
        );
    }
    for (path, detail) in [
        ("suggest-price", "Error procesando sugerencia de precio"),
        ("predict-demand", "Error procesando prediccion de demanda"),
    ] {
        stub.script([Reply::Status(500)]);
        assert_eq!(
            about(&mesh, path, "Cartagena").await,
            (500, json!({ "detail": detail })),
            "{path}"
        );
    }
    stub.script([Reply::Text("Sigo aquí.")]);
    let (status, body) = chat(&mesh, "hola", "f").await;
    assert_eq!((status, &body["response"]), (200, &json!("Sigo aquí.")));
    mesh.stop().await;
}
