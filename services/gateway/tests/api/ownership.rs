//! Ownership of bookings and the admin-only feeds under the production policy, through REST
//! (ADR 0010): the gateway's route table and the bookings service's own checks together.

use flightmesh::testing::{TestMesh, status_and_json};
use serde_json::{Value, json};

use crate::auth::{register, token};

const ADMIN_EMAIL: &str = "admin@flightmesh.test";
const ADMIN_PASSWORD: &str = "admin-secreto-largo";

/// The mesh with the production policy in the gateway and in bookings.
async fn production() -> TestMesh {
    TestMesh::start_with(|env, _| {
        env.set("ACCESS_POLICY", "production")
            .set("GATEWAY_ADMIN_EMAIL", ADMIN_EMAIL)
            .set("GATEWAY_ADMIN_PASSWORD", ADMIN_PASSWORD)
    })
    .await
}

async fn get(mesh: &TestMesh, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = mesh.http.get(mesh.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_json(request.send().await.unwrap()).await
}

async fn post(mesh: &TestMesh, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = mesh.http.post(mesh.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_json(request.send().await.unwrap()).await
}

/// Registers `email` and signs in.
async fn user(mesh: &TestMesh, email: &str) -> String {
    let (status, body) = register(mesh, email, "secreto-de-prueba").await;
    assert_eq!(status, 200, "{body}");
    token(mesh, email, "secreto-de-prueba").await
}

/// A flight (created by the admin) with room for everyone.
async fn flight(mesh: &TestMesh, admin: &str) -> i64 {
    let (status, destination) = post(
        mesh,
        "/api/v1/flights/destinations/",
        Some(admin),
        &json!({"name": "Cartagena", "tax_amount": 50, "is_promotion": false, "allows_pets": true}),
    )
    .await;
    assert_eq!(status, 200, "{destination}");
    let (status, flight) = post(
        mesh,
        "/api/v1/flights/",
        Some(admin),
        &json!({"flight_number": "CT-1", "origin": "Bogota", "base_price": 1000, "destination_id": destination["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{flight}");
    flight["id"].as_i64().unwrap()
}

/// Books `passenger` (age 8: the candy log names them) as `token`; returns the booking's id.
async fn book(mesh: &TestMesh, token: &str, flight: i64, passenger: &str) -> i64 {
    let (status, booking) = post(
        mesh,
        "/api/v1/bookings/",
        Some(token),
        &json!({"passenger_name": passenger, "passenger_age": 8, "flight_id": flight}),
    )
    .await;
    assert_eq!(status, 200, "{booking}");
    booking["id"].as_i64().unwrap()
}

fn ids(list: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = list
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_sees_lists_and_cancels_only_their_own_bookings() {
    let mesh = production().await;
    let admin = token(&mesh, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ana = user(&mesh, "ana@example.com").await;
    let luis = user(&mesh, "luis@example.com").await;
    let flight = flight(&mesh, &admin).await;
    let anas = book(&mesh, &ana, flight, "Ana Pérez").await;
    let luiss = book(&mesh, &luis, flight, "Luis Gómez").await;

    // Another user's booking is exactly a missing one: 404, same message, for get and cancel.
    let not_found = (404, json!({"detail": "Reserva no encontrada."}));
    assert_eq!(
        get(&mesh, &format!("/api/v1/bookings/{anas}"), Some(&luis)).await,
        not_found
    );
    assert_eq!(
        post(
            &mesh,
            &format!("/api/v1/bookings/{anas}/cancel"),
            Some(&luis),
            &json!({})
        )
        .await,
        not_found
    );
    assert_eq!(
        get(&mesh, "/api/v1/bookings/999999999", Some(&luis)).await,
        not_found
    );
    // Ana's booking is untouched and still hers.
    let (status, booking) = get(&mesh, &format!("/api/v1/bookings/{anas}"), Some(&ana)).await;
    assert_eq!(status, 200, "{booking}");
    assert_eq!(booking["status"], json!("confirmed"));
    assert_eq!(booking["passenger_name"], json!("Ana Pérez"));

    // Each list holds its owner's bookings only; the admin's holds everyone's.
    let (status, list) = get(&mesh, "/api/v1/bookings/", Some(&luis)).await;
    assert_eq!((status, ids(&list)), (200, vec![luiss]));
    let (status, list) = get(&mesh, "/api/v1/bookings/?limit=1000", Some(&ana)).await;
    assert_eq!((status, ids(&list)), (200, vec![anas]));
    let (status, list) = get(&mesh, "/api/v1/bookings/", Some(&admin)).await;
    let mut both = vec![anas, luiss];
    both.sort_unstable();
    assert_eq!((status, ids(&list)), (200, both));
    assert_eq!(get(&mesh, "/api/v1/bookings/", None).await.0, 401);

    // The admin sees and cancels anyone's booking; the owner cancels their own.
    let (status, seen) = get(&mesh, &format!("/api/v1/bookings/{luiss}"), Some(&admin)).await;
    assert_eq!(
        (status, &seen["passenger_name"]),
        (200, &json!("Luis Gómez"))
    );
    let (status, cancelled) = post(
        &mesh,
        &format!("/api/v1/bookings/{luiss}/cancel"),
        Some(&admin),
        &json!({}),
    )
    .await;
    assert_eq!((status, &cancelled["status"]), (200, &json!("cancelled")));
    let (status, cancelled) = post(
        &mesh,
        &format!("/api/v1/bookings/{anas}/cancel"),
        Some(&ana),
        &json!({}),
    )
    .await;
    assert_eq!((status, &cancelled["status"]), (200, &json!("cancelled")));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feeds_that_name_passengers_are_admin_only() {
    let mesh = production().await;
    let admin = token(&mesh, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ana = user(&mesh, "ana@example.com").await;
    let flight = flight(&mesh, &admin).await;
    book(&mesh, &ana, flight, "Ana Pérez").await;

    for path in [
        "/api/v1/bookings/events",
        "/api/v1/stats/candy",
        "/api/v1/stats/notifications",
    ] {
        assert_eq!(
            get(&mesh, path, None).await,
            (401, json!({"detail": "No autenticado"})),
            "{path}"
        );
        assert_eq!(
            get(&mesh, path, Some(&ana)).await,
            (403, json!({"detail": "Permisos insuficientes"})),
            "{path}"
        );
        let (status, body) = get(&mesh, path, Some(&admin)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, events) = get(&mesh, "/api/v1/bookings/events", Some(&admin)).await;
    assert_eq!(events["total"], json!(1), "{events}");
    // Aggregates without names stay public.
    for path in [
        "/api/v1/stats/general",
        "/api/v1/stats/destinations",
        "/api/v1/stats/destinations/Cartagena/taxes",
    ] {
        let (status, body) = get(&mesh, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compatible_policy_keeps_bookings_and_feeds_open() {
    let mesh = TestMesh::start().await;
    let destination = mesh.destination("Cartagena", 50.0, false, true).await;
    let flight = mesh.flight("CT-1", 1000.0, destination, 10).await;
    let (status, booking) = mesh
        .post(
            "/api/v1/bookings/",
            &json!({"passenger_name": "Ana", "passenger_age": 8, "flight_id": flight}),
        )
        .await;
    assert_eq!(status, 200, "{booking}");
    let id = booking["id"].as_i64().unwrap();
    // A signed-in caller still sees everyone's bookings, as the old system had it.
    register(&mesh, "luis@example.com", "secreto-de-prueba").await;
    let luis = token(&mesh, "luis@example.com", "secreto-de-prueba").await;
    let (status, seen) = get(&mesh, &format!("/api/v1/bookings/{id}"), Some(&luis)).await;
    assert_eq!((status, &seen["id"]), (200, &json!(id)));
    let (status, list) = get(&mesh, "/api/v1/bookings/", Some(&luis)).await;
    assert_eq!((status, ids(&list)), (200, vec![id]));
    for path in [
        "/api/v1/bookings/",
        "/api/v1/bookings/events",
        "/api/v1/stats/candy",
        "/api/v1/stats/notifications",
    ] {
        let (status, body) = mesh.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    mesh.stop().await;
}
