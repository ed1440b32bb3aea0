//! The catalog part of the contract over HTTP.

use serde_json::json;

use crate::TestStack;
use crate::support::field_of_each;

#[tokio::test(flavor = "multi_thread")]
async fn old_clients_catalog_flow() {
    let stack = TestStack::start().await;

    let (status, cartagena) = stack
        .post(
            "/api/v1/flights/destinations/",
            &json!({"name": "Cartagena", "tax_amount": 50, "is_promotion": true, "allows_pets": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        cartagena,
        // `description` (semantic destination search) is an extra field the contract allows:
        // null until one is stored.
        json!({"id": cartagena["id"], "name": "Cartagena", "tax_amount": 50.0, "is_promotion": true, "allows_pets": true, "description": null})
    );
    // Defaults of the old API: is_promotion false, allows_pets true.
    let (_, londres) = stack
        .post(
            "/api/v1/flights/destinations",
            &json!({"name": "Londres", "tax_amount": 100.5}),
        )
        .await;
    assert_eq!(
        (
            londres["is_promotion"].clone(),
            londres["allows_pets"].clone()
        ),
        (json!(false), json!(true))
    );
    assert_eq!(londres["tax_amount"], json!(100.5));

    // Lists are bare arrays ordered by id, with and without the trailing slash.
    for path in [
        "/api/v1/flights/destinations",
        "/api/v1/flights/destinations/",
    ] {
        let (status, list) = stack.get(path).await;
        assert_eq!(status, 200);
        let names = field_of_each(&list, "name");
        assert_eq!(names, [json!("Cartagena"), json!("Londres")]);
    }
    let id = cartagena["id"].as_i64().unwrap();
    for path in [
        format!("/api/v1/flights/destinations/{id}"),
        format!("/api/v1/flights/destinations/{id}/"),
    ] {
        assert_eq!(stack.get(&path).await, (200, cartagena.clone()));
    }

    let (status, flight) = stack
        .post(
            "/api/v1/flights/",
            &json!({"flight_number": "CT-123", "origin": "Bogota", "base_price": 1000, "destination_id": id, "capacity": 150}),
        )
        .await;
    assert_eq!(status, 200, "{flight}");
    assert_eq!(
        flight,
        json!({
            "id": flight["id"],
            "flight_number": "CT-123",
            "origin": "Bogota",
            "base_price": 1000.0,
            "destination_id": id,
            "capacity": 150,
            "seats_available": 150,
            "destination": cartagena,
        })
    );
    let second = stack.flight("CT-124", 19.99, id, 180).await;
    let (_, second) = stack.get(&format!("/api/v1/flights/{second}")).await;
    assert_eq!(second["base_price"], json!(19.99));
    assert_eq!(second["capacity"], json!(180));

    for path in [
        "/api/v1/flights",
        "/api/v1/flights/",
        "/api/v1/flights/?skip=0&limit=100",
    ] {
        let (status, list) = stack.get(path).await;
        assert_eq!(status, 200);
        let numbers = field_of_each(&list, "flight_number");
        assert_eq!(numbers, [json!("CT-123"), json!("CT-124")], "{path}");
    }
    let (_, page) = stack.get("/api/v1/flights/?skip=1&limit=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["flight_number"], json!("CT-124"));
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_and_missing_things() {
    let stack = TestStack::start().await;
    let id = stack.destination("Cartagena", 50.0, true, true).await;
    stack.flight("CT-123", 1000.0, id, 180).await;

    // (path, body, the expected status and detail)
    let refused_creations = [
        (
            "/api/v1/flights/destinations/",
            json!({"name": "Cartagena", "tax_amount": 10}),
            409,
            "El destino Cartagena ya existe.",
        ),
        (
            "/api/v1/flights/",
            json!({"flight_number": "CT-123", "origin": "Cali", "base_price": 10, "destination_id": id}),
            409,
            "El vuelo CT-123 ya existe.",
        ),
        (
            "/api/v1/flights/",
            json!({"flight_number": "XX-1", "origin": "Cali", "base_price": 10, "destination_id": 99_999}),
            404,
            "Destino no encontrado.",
        ),
    ];
    for (path, body, status, detail) in refused_creations {
        assert_eq!(
            stack.post(path, &body).await,
            (status, json!({"detail": detail})),
            "{body}"
        );
    }

    assert_eq!(
        stack.get("/api/v1/flights/99999").await,
        (404, json!({"detail": "Vuelo no encontrado."}))
    );
    assert_eq!(
        stack.get("/api/v1/flights/destinations/99999").await,
        (404, json!({"detail": "Destino no encontrado."}))
    );
}
