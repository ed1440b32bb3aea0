//! The worker survives its broker going away, and reports what it does.

use std::time::Duration;

use flightmesh::testing::TestMesh;
use flightmesh_testkit::TcpProxy;

use crate::{assert_redis, book, cartagena_flight, mesh_with_cartagena_flight, wait_for_revenue};

#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_reconnects_by_itself_after_the_broker_comes_back() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let amqp = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let mesh = TestMesh::start_with(move |env, _| env.set("STATS_AMQP_URL", amqp)).await;
    let flight = cartagena_flight(&mesh, 100.0, false).await;
    book(&mesh, "Ana", 30, false, flight).await;
    wait_for_revenue(&mesh, 15_000).await;

    // The worker's broker connection drops (a broker restart, a network cut).
    proxy.cut();
    book(&mesh, "Luis", 30, false, flight).await;
    book(&mesh, "Eva", 30, false, flight).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_redis(&mesh, "stats:total_revenue_cents", "15000").await;

    proxy.restore();
    wait_for_revenue(&mesh, 45_000).await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_describe_the_events_consumed() {
    let (mesh, flight) = mesh_with_cartagena_flight(100.0, false).await;
    book(&mesh, "Ana", 30, false, flight).await;
    wait_for_revenue(&mesh, 15_000).await;
    let metrics = reqwest::get(format!("http://{}/metrics", mesh.addrs.admin[2]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        r#"stats_events_total{event_type="booking.created",outcome="applied"}"#,
        "stats_event_processing_seconds_bucket",
        "stats_event_lag_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    mesh.stop().await;
}
