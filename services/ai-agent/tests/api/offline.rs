//! The offline answerer (no model configured): grounded, deterministic Spanish answers.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use serde_json::json;

use crate::{about, chat, seed_cartagena};

#[tokio::test(flavor = "multi_thread")]
async fn offline_chat_answers_with_the_fetched_figures() {
    let mesh = TestMesh::start().await;
    seed_cartagena(&mesh).await;
    let (status, body) = chat(
        &mesh,
        "¿Cuánto cuestan los impuestos para viajar a Cartagena?",
        "o",
    )
    .await;
    assert_eq!(status, 200);
    let answer = body["response"].as_str().unwrap();
    assert!(answer.contains("50.00"), "{answer}");
    assert!(answer.contains("Cartagena"), "{answer}");

    for (question, expected) in [
        (
            "¿Puedo llevar mi perro a cartagena?",
            "Se permite viajar con mascotas a Cartagena.",
        ),
        (
            "¿Cuánto cuestan los impuestos para viajar a Atlantis?",
            "No se encontró información para el destino Atlantis.",
        ),
    ] {
        let (_, body) = chat(&mesh, question, "o").await;
        assert_eq!(body["response"], json!(expected), "{question}");
    }
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_predictions_follow_the_formula_for_alta_baja_and_estable() {
    let mesh = TestMesh::start().await;
    let mut flights = Vec::new();
    for name in ["Cartagena", "Lima", "Quito"] {
        let destination = mesh.destination(name, 10.0, false, true).await;
        flights.push(
            mesh.flight(&format!("{name}-1"), 100.0, destination, 100)
                .await,
        );
    }
    // 8, 2 and 5 bookings: average 5 → alta, baja, estable.
    for (flight, count) in flights.iter().zip([8, 2, 5]) {
        for i in 0..count {
            let (status, _) = mesh
                .post("/api/v1/bookings/", &json!({"passenger_name": format!("P{i}"), "passenger_age": 30, "flight_id": flight}))
                .await;
            assert_eq!(status, 200);
        }
    }
    eventually(Duration::from_secs(30), || async {
        mesh.get("/api/v1/stats/destinations").await.1["destinations"]
            .as_array()
            .is_some_and(|d| {
                d.iter()
                    .map(|x| x["total_bookings"].as_i64().unwrap())
                    .sum::<i64>()
                    == 15
            })
    })
    .await;

    let (status, body) = about(&mesh, "predict-demand", "cartagena").await;
    assert_eq!(status, 200);
    let prediction = body["prediction"].as_str().unwrap();
    assert!(
        prediction.starts_with("Demanda alta. Considerar aumentar precios o capacidad."),
        "{prediction}"
    );
    assert!(
        prediction.contains("8 de 15")
            && prediction.contains("53.33%")
            && prediction.contains("Proyección: 8"),
        "{prediction}"
    );

    let answer = |path: &'static str, destination: &'static str, field: &'static str| {
        let mesh = &mesh;
        async move {
            let (_, body) = about(mesh, path, destination).await;
            body[field].as_str().unwrap_or_default().to_owned()
        }
    };
    let prediction = answer("predict-demand", "Lima", "prediction").await;
    assert!(
        prediction.starts_with("Demanda baja. Considerar promociones para estimular demanda."),
        "{prediction}"
    );
    assert!(
        prediction.contains("Proyección: 1 reservas"),
        "{prediction}"
    );

    let quito = answer("predict-demand", "Quito", "prediction").await;
    assert!(
        quito.starts_with("Demanda estable. Mantener estrategia actual."),
        "{quito}"
    );
    let cartagena = answer("suggest-price", "Cartagena", "suggestion").await;
    for part in [
        "subir el precio base un 10%, a 110.00",
        "demanda alta (8 reservas, 53.33% del mercado",
    ] {
        assert!(cartagena.contains(part), "{cartagena}");
    }
    for (destination, part) in [
        (
            "Lima",
            "activar una promoción del 10% (precio efectivo 90.00)",
        ),
        ("Quito", "mantener el precio base en 100.00"),
    ] {
        let suggestion = answer("suggest-price", destination, "suggestion").await;
        assert!(suggestion.contains(part), "{suggestion}");
    }
    assert_eq!(
        answer("suggest-price", "Atlantis", "suggestion").await,
        "No se encontró información para el destino Atlantis."
    );
    mesh.stop().await;
}
