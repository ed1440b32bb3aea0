//! Rebuilding the statistics from the bookings after Redis lost them.

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::{book, cartagena_flight, flight_to, wait_for_revenue};

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_after_losing_the_keys_restores_identical_values() {
    let mesh = TestMesh::start().await;
    let ct = cartagena_flight(&mesh, 1000.0, true).await;
    let li = flight_to(&mesh, "Lima", 20.0, false, true, "LI-1", 300.0).await;
    book(&mesh, "Ana", 30, true, ct).await;
    book(&mesh, "Nino", 8, false, ct).await;
    book(&mesh, "Eva", 5, true, li).await;
    let luis = book(&mesh, "Luis", 9, false, li).await;
    mesh.post(
        &format!("/api/v1/bookings/{}/cancel", luis["id"]),
        &json!({}),
    )
    .await;
    // Every event applied: the revenue passes through this figure before Luis' booking is counted,
    // so wait for his cancellation in the candy log too.
    wait_for_revenue(&mesh, 95_000 + 95_000 + 32_000).await;
    flightmesh::testing::eventually(std::time::Duration::from_secs(30), || async {
        mesh.get("/api/v1/stats/candy").await.1["total_count"] == json!(4)
    })
    .await;
    wait_for_revenue(&mesh, 95_000 + 95_000 + 32_000).await;

    let before = (
        mesh.get("/api/v1/stats/general").await.1,
        mesh.get("/api/v1/stats/destinations").await.1,
        mesh.get("/api/v1/stats/candy").await.1,
    );

    // Redis loses the statistics.
    mesh.forget_statistics().await;
    assert_eq!(
        mesh.get("/api/v1/stats/general").await.1["total_revenue"],
        json!(0.0)
    );
    // An unsharded bitmap of an earlier version: the rebuild retires it.
    let legacy = format!("{}stats:applied:booking.created", mesh.names.redis_prefix);
    let mut redis = mesh.redis().await;
    let _: i64 = redis::cmd("SETBIT")
        .arg(&legacy)
        .arg(999)
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();

    let (status, report) = mesh.post("/api/v1/stats/rebuild", &json!({})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report, json!({"bookings_read": 4, "events_applied": 5}));
    let after = (
        mesh.get("/api/v1/stats/general").await.1,
        mesh.get("/api/v1/stats/destinations").await.1,
        mesh.get("/api/v1/stats/candy").await.1,
    );
    assert_eq!(after, before);
    // The facts are in sharded bitmaps again, the legacy one is gone.
    let legacy_exists: i64 = redis::cmd("EXISTS")
        .arg(&legacy)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(legacy_exists, 0);
    let created: i64 = redis::cmd("BITCOUNT")
        .arg(format!("{legacy}:0"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(created, 4);
    // The rebuild left no fresh keyspace behind, and new bookings still count once.
    let leftovers = mesh.redis_keys("rebuild:*").await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    book(&mesh, "Zoe", 40, false, li).await;
    wait_for_revenue(&mesh, 95_000 + 95_000 + 32_000 + 32_000).await;
    mesh.stop().await;
}
