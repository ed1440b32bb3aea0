//! The model path: tool definitions sent, tools executed against the real services, results sent
//! back, failures mapped to the contract's statuses.

use std::time::Duration;

use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::{ask, chat, seed_cartagena};
use flightmesh::model_stub::{Reply, Stub};

async fn mesh_with(stub: &Stub, timeout: &str) -> TestMesh {
    TestMesh::start_with_model(
        stub,
        &[("AI_AI_MODEL", "stub-model"), ("AI_AI_TIMEOUT", timeout)],
    )
    .await
}

fn messages(request: &Value) -> &Vec<Value> {
    request["messages"].as_array().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_calls_a_tool_that_reads_the_real_catalog() {
    let stub = Stub::start().await;
    let mesh = mesh_with(&stub, "10s").await;
    seed_cartagena(&mesh).await;
    stub.script([
        Reply::ToolCall {
            id: "call_1",
            name: "market_data",
            arguments: json!({"destination": "cartagena"}),
        },
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
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
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
    let tool_result = messages(&requests[1])
        .iter()
        .find(|m| m["role"] == json!("tool"))
        .expect("a tool message");
    assert_eq!(tool_result["tool_call_id"], json!("call_1"));
    let content: Value = serde_json::from_str(tool_result["content"].as_str().unwrap()).unwrap();
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
        Reply::ToolCall {
            id: "call_9",
            name: "demand_prediction",
            arguments: json!({"destination": "Atlantis"}),
        },
        Reply::Text("No tengo datos de Atlantis."),
    ]);
    let (status, _) = ask(
        &mesh,
        "predict-demand",
        json!({"destination_name": "Atlantis"}),
    )
    .await;
    assert_eq!(status, 200);
    let requests = stub.requests();
    let tool_result = messages(&requests[1])
        .iter()
        .find(|m| m["role"] == json!("tool"))
        .unwrap();
    assert!(
        tool_result["content"]
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
    stub.script([
        Reply::Status(500),
        Reply::Malformed,
        Reply::Status(429),
        Reply::Slow(Duration::from_secs(3), "too late"),
        Reply::Status(500),
        Reply::Status(500),
        Reply::Text("Sigo aquí."),
    ]);
    assert_eq!(
        chat(&mesh, "hola", "f").await,
        (500, json!({"detail": "Error procesando solicitud de IA"}))
    );
    assert_eq!(
        chat(&mesh, "hola", "f").await,
        (500, json!({"detail": "Error procesando solicitud de IA"}))
    );
    assert_eq!(
        chat(&mesh, "hola", "f").await,
        (
            503,
            json!({"detail": "El servicio de IA esta saturado. Intente de nuevo en unos segundos."})
        )
    );
    assert_eq!(
        chat(&mesh, "hola", "f").await,
        (
            504,
            json!({"detail": "El servicio de IA tardo demasiado en responder. Intente de nuevo."})
        )
    );
    for (path, detail) in [
        ("suggest-price", "Error procesando sugerencia de precio"),
        ("predict-demand", "Error procesando prediccion de demanda"),
    ] {
        assert_eq!(
            ask(&mesh, path, json!({"destination_name": "Cartagena"})).await,
            (500, json!({ "detail": detail })),
            "{path}"
        );
    }
    let (status, body) = chat(&mesh, "hola", "f").await;
    assert_eq!((status, &body["response"]), (200, &json!("Sigo aquí.")));
    mesh.stop().await;
}
