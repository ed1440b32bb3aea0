//! A service whose peer cannot be reached answers 503 in the contract's words (its own message
//! for that peer), never a 500; a booking that could not be priced writes nothing.

use flightmesh::Service;
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

/// The service started alone, the request (`None`: GET), the answer's `detail`.
const CASES: &[(Service, &str, Option<&str>, &str)] = &[
    (
        Service::Bookings,
        "/api/v1/bookings/",
        Some(r#"{"passenger_name": "Ana", "passenger_age": 30, "flight_id": 1}"#),
        "El servicio de vuelos no esta disponible. Intente de nuevo.",
    ),
    (
        Service::Stats,
        "/api/v1/stats/destinations/Cartagena/taxes",
        None,
        "El servicio de vuelos no esta disponible. Intente de nuevo.",
    ),
    (
        Service::Stats,
        "/api/v1/stats/rebuild",
        Some("{}"),
        "El servicio de reservas no esta disponible. Intente de nuevo.",
    ),
    (
        Service::Ai,
        "/api/v1/ai/search-destinations?query=playas%20del%20caribe",
        None,
        "Los datos necesarios no estan disponibles. Intente de nuevo.",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_service_whose_peer_is_down_answers_503_with_its_own_message() {
    for &(service, path, body, detail) in CASES {
        // Only `service` behind the gateway: its calls to the others are refused.
        let mesh = TestMesh::builder().only(&[service]).start().await;
        let answer = match body {
            Some(body) => {
                let body: Value = serde_json::from_str(body).unwrap();
                mesh.post(path, &body).await
            }
            None => mesh.get(path).await,
        };
        assert_eq!(answer, (503, json!({ "detail": detail })), "{path}");
        if service == Service::Bookings {
            let bookings = mesh.db.count("SELECT count(*) FROM bookings.bookings");
            let events = mesh.db.count("SELECT count(*) FROM bookings.outbox");
            assert_eq!(
                (bookings.await, events.await),
                (0, 0),
                "no booking, no event"
            );
        }
        mesh.stop().await;
    }
}
