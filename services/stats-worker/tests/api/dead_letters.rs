//! Events that cannot be applied end in the dead-letter queue — at once if they cannot even be
//! read, after the retry budget if applying keeps failing — while the rest keep flowing.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use lapin::options::BasicPublishOptions;
use serde_json::json;

use crate::{
    amqp, assert_redis, book, cartagena_flight, flight_to, queue_depth, wait_for_consumer,
    wait_for_revenue,
};

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_are_dead_lettered_and_the_rest_keep_flowing() {
    let mesh = TestMesh::start().await;
    let good_flight = cartagena_flight(&mesh, 100.0, false).await;
    let bad_flight = flight_to(&mesh, "Veneno", 10.0, false, true, "VEN-1", 100.0).await;

    // A key of the wrong type makes every event for "Veneno" fail to apply, every time.
    mesh.redis_lpush("stats:destination:Veneno", &["not a counter"])
        .await;
    // And a message nobody can read.
    wait_for_consumer(&mesh).await;
    let channel = amqp().await;
    channel
        .basic_publish(
            mesh.names.exchange.as_str().into(),
            "booking.created".into(),
            BasicPublishOptions::default(),
            b"definitely not protobuf \xff\xfe",
            flightmesh_events::amqp::event_properties("garbage-1", "booking.created", 0, None),
        )
        .await
        .unwrap();

    book(&mesh, "Toxico", 30, false, bad_flight).await;
    for name in ["Ana", "Luis", "Eva"] {
        book(&mesh, name, 30, false, good_flight).await;
    }
    // The good events are applied while the poisoned one waits between its retries.
    wait_for_revenue(&mesh, 45_000).await;

    eventually(Duration::from_secs(30), || async {
        queue_depth(&format!("{}.dead", mesh.names.stats_queue)).await == 2
    })
    .await;
    let (status, dead) = mesh.get("/api/v1/stats/dead-letters").await;
    assert_eq!(status, 200);
    assert_eq!(dead["count"], json!(2));
    let entries = dead["entries"].as_array().unwrap();
    let undecodable = entries
        .iter()
        .find(|e| e["args"]["message_id"] == json!("garbage-1"))
        .expect("the garbage");
    assert!(
        undecodable["error"]
            .as_str()
            .unwrap()
            .contains("undecodable"),
        "{undecodable}"
    );
    assert_eq!(
        undecodable["args"]["retries"],
        json!(0),
        "dead-lettered at once"
    );
    let retried = entries
        .iter()
        .find(|e| e["args"]["message_id"] != json!("garbage-1"))
        .unwrap();
    assert_eq!(retried["task"], json!("booking.created"));
    assert!(
        retried["error"]
            .as_str()
            .unwrap()
            .contains("after 3 retries"),
        "{retried}"
    );
    assert!(retried["timestamp"].is_string());

    // Nothing of the poisoned event was applied: no partial update.
    assert_redis(&mesh, "stats:total_revenue_cents", "45000").await;
    assert_eq!(
        mesh.get("/api/v1/stats/notifications").await.1["total_sent"],
        json!(3)
    );
    mesh.stop().await;
}
