//! The old system's statistics, end to end over REST, and the raw Redis keys behind them.

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::{
    assert_redis, book, cartagena_flight, flight_to, mesh_with_cartagena_flight, wait_for_revenue,
};

#[tokio::test(flavor = "multi_thread")]
async fn bookings_become_the_contracts_statistics() {
    let mesh = TestMesh::start().await;
    let ct1 = cartagena_flight(&mesh, 1000.0, true).await;
    let lon1 = flight_to(&mesh, "Londres", 100.0, false, false, "LON-1", 2000.0).await;

    book(&mesh, "Ana", 30, true, ct1).await; // 950.00, a pet
    let nino = book(&mesh, "Nino", 8, false, ct1).await; // 950.00, candy
    book(&mesh, "Luis", 40, false, lon1).await; // 2100.00
    wait_for_revenue(&mesh, 400_000).await;
    // The catalog event travels apart from the bookings' (another outbox, another exchange).
    flightmesh::testing::eventually(std::time::Duration::from_secs(30), || async {
        mesh.redis_get("stats:promotion_alerts_sent")
            .await
            .is_some()
    })
    .await;

    assert_eq!(
        mesh.get("/api/v1/stats/general").await,
        (
            200,
            json!({"total_revenue": 4000.0, "total_pet_bookings": 1, "total_infant_count": 1, "total_candy_cost": 5.0})
        )
    );
    assert_eq!(
        mesh.get("/api/v1/stats/destinations").await,
        (
            200,
            json!({
                "destinations": [
                    {"destination": "Cartagena", "total_bookings": 2},
                    {"destination": "Londres", "total_bookings": 1}
                ],
                "most_popular": "Cartagena"
            })
        )
    );
    let candy_line = format!("Reserva {}: Dulce entregado a Nino", nino["id"]);
    assert_eq!(
        mesh.get("/api/v1/stats/candy").await,
        (
            200,
            json!({"entries": [candy_line.clone()], "total_count": 1})
        )
    );

    // The raw keys, as the old system's readers see them.
    for (key, value) in [
        ("stats:total_revenue", "4000"),
        ("stats:destination:Cartagena", "2"),
        ("stats:destination:Londres", "1"),
        ("stats:total_pet_bookings", "1"),
        ("stats:total_infant_count", "1"),
        ("stats:total_candy_cost", "5"),
        ("stats:notifications_sent", "3"),
        ("stats:promotion_alerts_sent", "1"),
    ] {
        assert_redis(&mesh, key, value).await;
    }
    let candy = mesh.redis_list("logs:candy_distribution").await;
    assert_eq!(candy, [candy_line]);

    // Notifications: three booking confirmations and the promotion alert, newest first.
    let (status, notifications) = mesh.get("/api/v1/stats/notifications?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(notifications["total_sent"], json!(4));
    let list = notifications["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    let alert = list
        .iter()
        .find(|n| n["type"] == json!("promotion_alert"))
        .expect("a promotion alert");
    assert_eq!(
        (alert["destination"].clone(), alert["discount"].clone()),
        (json!("Cartagena"), json!("10%"))
    );
    let confirmation = list
        .iter()
        .find(|n| n["passenger"] == json!("Luis"))
        .unwrap();
    assert_eq!(confirmation["type"], json!("booking_confirmation"));
    assert_eq!(
        (
            confirmation["flight"].clone(),
            confirmation["total"].as_f64()
        ),
        (json!("LON-1"), Some(2100.0))
    );
    assert!(confirmation["timestamp"].is_string());

    // Taxes of a destination: its tax × its bookings; the name matches whatever its case.
    assert_eq!(
        mesh.get("/api/v1/stats/destinations/cartagena/taxes").await,
        (
            200,
            json!({"destination": "Cartagena", "tax_amount": 50.0, "total_bookings": 2, "total_tax_collected": 100.0})
        )
    );
    assert_eq!(
        mesh.get("/api/v1/stats/destinations/Atlantis/taxes").await,
        (404, json!({"detail": "Destino 'Atlantis' no encontrado"}))
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_applies_the_opposite_amounts() {
    let (mesh, flight) = mesh_with_cartagena_flight(100.0, false).await;
    book(&mesh, "Ana", 30, true, flight).await;
    let nino = book(&mesh, "Nino", 8, true, flight).await;
    wait_for_revenue(&mesh, 30_000).await;

    let (status, _) = mesh
        .post(
            &format!("/api/v1/bookings/{}/cancel", nino["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    wait_for_revenue(&mesh, 15_000).await;
    assert_eq!(
        mesh.get("/api/v1/stats/general").await.1,
        json!({"total_revenue": 150.0, "total_pet_bookings": 1, "total_infant_count": 0, "total_candy_cost": 0.0})
    );
    assert_eq!(
        mesh.get("/api/v1/stats/destinations").await.1["destinations"][0]["total_bookings"],
        json!(1)
    );
    let id = &nino["id"];
    assert_eq!(
        mesh.get("/api/v1/stats/candy").await.1,
        json!({
            "entries": [format!("Reserva {id}: Dulce cancelado para Nino"), format!("Reserva {id}: Dulce entregado a Nino")],
            "total_count": 2
        })
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_is_503_not_500() {
    let closed = flightmesh::testing::closed_addr();
    let mesh =
        TestMesh::start_with(move |env, _| env.set("STATS_REDIS_URL", format!("redis://{closed}")))
            .await;
    for path in [
        "/api/v1/stats/general",
        "/api/v1/stats/destinations",
        "/api/v1/stats/candy",
        "/api/v1/stats/dead-letters",
    ] {
        let (status, body) = mesh.get(path).await;
        assert_eq!(
            (status, body),
            (
                503,
                json!({"detail": "Las estadisticas no estan disponibles. Intente de nuevo."})
            ),
            "{path}"
        );
    }
    mesh.stop().await;
}
