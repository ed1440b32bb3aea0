//! Ownership of bookings and the admin-only feeds under the production policy, through REST
//! (ADR 0010): the gateway's route table and the bookings service's own checks together.

use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::auth::{register_and_login, token};
use crate::support::{ADMIN_EMAIL, get_as as get, post_as as post, production_mesh};

const ADMIN_PASSWORD: &str = "admin-secreto-largo";

/// The mesh with the production policy in the gateway and in bookings.
async fn production() -> TestMesh {
    production_mesh(ADMIN_PASSWORD).await
}

/// Registers `email` and signs in.
async fn user(mesh: &TestMesh, email: &str) -> String {
    register_and_login(mesh, email, "secreto-de-prueba").await
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

/// Books `passenger` (age 8: the candy log names them) as `token` (anonymously with `None`);
/// returns the booking's id.
async fn book(mesh: &TestMesh, token: Option<&str>, flight: i64, passenger: &str) -> i64 {
    let (status, booking) = post(
        mesh,
        "/api/v1/bookings/",
        token,
        &json!({"passenger_name": passenger, "passenger_age": 8, "flight_id": flight}),
    )
    .await;
    assert_eq!(status, 200, "{booking}");
    booking["id"].as_i64().unwrap()
}

/// Cancels booking `id` as `token` → (status, JSON).
async fn cancel(mesh: &TestMesh, id: i64, token: &str) -> (u16, Value) {
    let path = format!("/api/v1/bookings/{id}/cancel");
    post(mesh, &path, Some(token), &json!({})).await
}

/// Asserts that each of `paths` answers 200 to `token` (anonymously with `None`).
async fn assert_all_answer_200(mesh: &TestMesh, token: Option<&str>, paths: &[&str]) {
    for path in paths {
        let (status, body) = get(mesh, path, token).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
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
    let anas = book(&mesh, Some(&ana), flight, "Ana Pérez").await;
    let luiss = book(&mesh, Some(&luis), flight, "Luis Gómez").await;

    // Another user's booking is exactly a missing one: 404, same message, for get and cancel.
    let not_found = (404, json!({"detail": "Reserva no encontrada."}));
    assert_eq!(
        get(&mesh, &format!("/api/v1/bookings/{anas}"), Some(&luis)).await,
        not_found
    );
    assert_eq!(cancel(&mesh, anas, &luis).await, not_found);
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
    for (booking, by) in [(luiss, &admin), (anas, &ana)] {
        let (status, cancelled) = cancel(&mesh, booking, by).await;
        assert_eq!((status, &cancelled["status"]), (200, &json!("cancelled")));
    }
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feeds_that_name_passengers_are_admin_only() {
    let mesh = production().await;
    let admin = token(&mesh, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ana = user(&mesh, "ana@example.com").await;
    let flight = flight(&mesh, &admin).await;
    book(&mesh, Some(&ana), flight, "Ana Pérez").await;

    let feeds = [
        "/api/v1/bookings/events",
        "/api/v1/stats/candy",
        "/api/v1/stats/notifications",
    ];
    for path in feeds {
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
    }
    assert_all_answer_200(&mesh, Some(&admin), &feeds).await;
    let (_, events) = get(&mesh, "/api/v1/bookings/events", Some(&admin)).await;
    assert_eq!(events["total"], json!(1), "{events}");
    // Aggregates without names stay public.
    assert_all_answer_200(
        &mesh,
        None,
        &[
            "/api/v1/stats/general",
            "/api/v1/stats/destinations",
            "/api/v1/stats/destinations/Cartagena/taxes",
        ],
    )
    .await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compatible_policy_keeps_bookings_and_feeds_open() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(10).await;
    let id = book(&mesh, None, flight, "Ana").await;
    // A signed-in caller still sees everyone's bookings, as the old system had it.
    let luis = user(&mesh, "luis@example.com").await;
    let (status, seen) = get(&mesh, &format!("/api/v1/bookings/{id}"), Some(&luis)).await;
    assert_eq!((status, &seen["id"]), (200, &json!(id)));
    let (status, list) = get(&mesh, "/api/v1/bookings/", Some(&luis)).await;
    assert_eq!((status, ids(&list)), (200, vec![id]));
    assert_all_answer_200(
        &mesh,
        None,
        &[
            "/api/v1/bookings/",
            "/api/v1/bookings/events",
            "/api/v1/stats/candy",
            "/api/v1/stats/notifications",
        ],
    )
    .await;
    mesh.stop().await;
}
