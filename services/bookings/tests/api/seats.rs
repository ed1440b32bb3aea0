//! The seat ledger under contention: never more bookings than seats.

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::{book, bookings_stored, seats_taken};

#[tokio::test(flavor = "multi_thread")]
async fn booking_for_last_seats_under_contention_books_exactly_capacity() {
    const CAPACITY: i32 = 7;
    const CLIENTS: usize = 40;
    let mesh = TestMesh::start().await;
    let destination = mesh.destination("Cartagena", 50.0, true, true).await;
    let flight = mesh.flight("CT-1", 100.0, destination, CAPACITY).await;

    let attempts = (0..CLIENTS).map(|i| {
        let http = mesh.http.clone();
        let url = mesh.url("/api/v1/bookings/");
        tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"passenger_name": format!("P{i}"), "passenger_age": 30, "flight_id": flight}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        })
    });
    let mut confirmed = 0;
    let mut sold_out = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            (200, _) => confirmed += 1,
            (409, body) => {
                assert_eq!(
                    body,
                    json!({"detail": "No hay asientos disponibles en el vuelo CT-1."})
                );
                sold_out += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        (confirmed, sold_out),
        (CAPACITY as usize, CLIENTS - CAPACITY as usize)
    );

    assert_eq!(bookings_stored(&mesh).await, i64::from(CAPACITY));
    assert_eq!(seats_taken(&mesh).await, i64::from(CAPACITY));
    let (_, seen) = mesh.get(&format!("/api/v1/flights/{flight}")).await;
    assert_eq!(seen["seats_available"], json!(0));

    // One cancellation frees exactly one seat.
    let (_, list) = mesh.get("/api/v1/bookings/").await;
    let first = list[0]["id"].as_i64().unwrap();
    let (status, _) = mesh
        .post(&format!("/api/v1/bookings/{first}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(book(&mesh, "Late", 30, false, flight).await.0, 200);
    assert_eq!(book(&mesh, "Later", 30, false, flight).await.0, 409);
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.bookings WHERE status = 'confirmed'")
            .await,
        i64::from(CAPACITY)
    );
    mesh.stop().await;
}
