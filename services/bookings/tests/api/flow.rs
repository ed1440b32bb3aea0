//! The old system's booking flow over REST, with the contract's prices and errors.

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::book;

#[tokio::test(flavor = "multi_thread")]
async fn the_old_systems_flow_over_rest() {
    let mesh = TestMesh::start().await;
    let cartagena = mesh.destination("Cartagena", 50.0, true, true).await;
    let ct123 = mesh.flight("CT-123", 1000.0, cartagena, 180).await;

    let (status, booking) = book(&mesh, "Juan Perez", 30, true, ct123).await;
    assert_eq!(status, 200, "{booking}");
    assert_eq!(booking["total_price"], json!(950.0));
    assert_eq!(booking["total_price"].to_string(), "950.0");
    assert_eq!(booking["status"], json!("confirmed"));
    assert_eq!(booking["passenger_name"], json!("Juan Perez"));
    assert_eq!(
        (booking["has_pet"].clone(), booking["flight_id"].clone()),
        (json!(true), json!(ct123))
    );
    assert!(chrono::DateTime::parse_from_rfc3339(booking["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(
        booking["price"],
        json!({"base_price": 1000.0, "discount": 100.0, "tax_amount": 50.0, "total": 950.0})
    );

    let londres = mesh.destination("Londres", 100.0, false, false).await;
    let lon99 = mesh.flight("LON-99", 2000.0, londres, 180).await;
    let (status, body) = book(&mesh, "Ana", 40, true, lon99).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"detail": "El destino Londres no acepta mascotas."})
        )
    );
    let (status, without_pet) = book(&mesh, "Ana", 40, false, lon99).await;
    assert_eq!(
        (status, without_pet["total_price"].clone()),
        (200, json!(2100.0))
    );

    // Validation comes before any lookup: flight 999 does not exist, the answer is still 422.
    let (status, body) = book(&mesh, "Nino", -5, false, 999).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "passenger_age"]));
    assert_eq!(
        body["detail"][0]["msg"],
        json!("passenger_age debe estar entre 0 y 150")
    );
    let (status, _) = book(&mesh, "Abuelo", 151, false, ct123).await;
    assert_eq!(status, 422);

    let promo = mesh.destination("Santa Marta", 30.0, true, true).await;
    let cheap = mesh.flight("SM-1", 100.0, promo, 180).await;
    let (_, body) = book(&mesh, "Eva", 20, false, cheap).await;
    assert_eq!(body["total_price"], json!(120.0));

    let plain = mesh.destination("Lima", 50.0, false, true).await;
    let lima = mesh.flight("LIM-1", 200.0, plain, 180).await;
    let (_, body) = book(&mesh, "Eva", 20, false, lima).await;
    assert_eq!(body["total_price"], json!(250.0));

    let odd = mesh.destination("Quito", 0.01, true, true).await;
    let quito = mesh.flight("UIO-1", 19.99, odd, 180).await;
    let (_, body) = book(&mesh, "Eva", 20, false, quito).await;
    assert_eq!(body["total_price"], json!(18.0));

    let (status, body) = book(&mesh, "Eva", 20, false, 424_242).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "El vuelo seleccionado no existe."}))
    );

    // Reads: one booking, the list in id order, 404 for an unknown id.
    let id = booking["id"].as_i64().unwrap();
    assert_eq!(
        mesh.get(&format!("/api/v1/bookings/{id}")).await,
        (200, booking.clone())
    );
    let (status, list) = mesh.get("/api/v1/bookings/?skip=0&limit=100").await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!((ids.len(), &ids), (5, &sorted));
    assert_eq!(
        mesh.get("/api/v1/bookings/999999").await,
        (404, json!({"detail": "Reserva no encontrada."}))
    );
    let (status, _) = mesh.get("/api/v1/bookings/?limit=0").await;
    assert_eq!(status, 422);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_frees_the_seat_once() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(10).await;
    let (_, booking) = book(&mesh, "Ana", 30, false, flight).await;
    let id = booking["id"].as_i64().unwrap();
    let (_, seen) = mesh.get(&format!("/api/v1/flights/{flight}")).await;
    assert_eq!(seen["seats_available"], json!(9));

    let (status, cancelled) = mesh
        .post(&format!("/api/v1/bookings/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], json!("cancelled"));
    assert_eq!(cancelled["total_price"], booking["total_price"]);
    // Twice: the same answer, no second event, the seat freed once.
    let (status, again) = mesh
        .post(&format!("/api/v1/bookings/{id}/cancel/"), &json!({}))
        .await;
    assert_eq!((status, again), (200, cancelled));
    let (_, seen) = mesh.get(&format!("/api/v1/flights/{flight}")).await;
    assert_eq!(seen["seats_available"], json!(10));
    let (_, events) = mesh
        .get("/api/v1/bookings/events?event_type=booking.cancelled")
        .await;
    assert_eq!(events["total"], json!(1));

    let (status, body) = mesh
        .post("/api/v1/bookings/999999/cancel", &json!({}))
        .await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Reserva no encontrada."}))
    );
    mesh.stop().await;
}
