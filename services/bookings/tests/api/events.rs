//! `GET /bookings/events`: the outbox as the event log.

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::book;

#[tokio::test(flavor = "multi_thread")]
async fn events_are_listed_newest_first_with_total_and_filter() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let (_, booking) = book(&mesh, name, 30, false, flight).await;
        ids.push(booking["id"].as_i64().unwrap());
    }
    mesh.post(&format!("/api/v1/bookings/{}/cancel", ids[0]), &json!({}))
        .await;

    let (status, all) = mesh.get("/api/v1/bookings/events").await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], json!(4));
    let events = all["events"].as_array().unwrap();
    let types: Vec<_> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "booking.cancelled",
            "booking.created",
            "booking.created",
            "booking.created"
        ]
    );
    let booking_ids: Vec<_> = events
        .iter()
        .map(|e| e["booking_id"].as_i64().unwrap())
        .collect();
    assert_eq!(booking_ids, [ids[0], ids[2], ids[1], ids[0]]);
    let first = &events[0];
    assert!(first["id"].is_i64() && first["created_at"].is_string());
    assert_eq!(first["payload"]["passenger_name"], json!("A"));
    assert_eq!(first["payload"]["total_price"], json!("950.00"));
    assert_eq!(first["payload"]["status"], json!("cancelled"));

    let (_, created) = mesh
        .get("/api/v1/bookings/events/?event_type=booking.created&limit=2")
        .await;
    assert_eq!(created["total"], json!(3));
    assert_eq!(created["events"].as_array().unwrap().len(), 2);
    assert_eq!(created["events"][0]["booking_id"], json!(ids[2]));

    let (status, _) = mesh.get("/api/v1/bookings/events?limit=0").await;
    assert_eq!(status, 422);
    mesh.stop().await;
}
