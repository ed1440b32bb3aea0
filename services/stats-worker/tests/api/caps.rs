//! The log lists keep the newest `LOG_LIST_CAP` entries; the totals the API answers are counted,
//! not measured on the lists.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use lapin::options::BasicPublishOptions;
use serde_json::json;

use crate::{
    amqp, assert_redis, book, candy_count, cartagena_flight, wait_for_consumer, wait_for_revenue,
};

async fn list_len(mesh: &TestMesh, suffix: &str) -> i64 {
    let mut redis = mesh.redis().await;
    redis::cmd("LLEN")
        .arg(format!("{}{suffix}", mesh.names.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lists_are_capped_and_totals_stay_exact() {
    let mesh = TestMesh::start_with(|env, _| env.set("STATS_LOG_LIST_CAP", "5")).await;
    let flight = cartagena_flight(&mesh, 100.0, false).await;
    // 20 infants: 20 candy lines and 20 confirmations.
    for n in 0..20 {
        book(&mesh, &format!("Nino {n}"), 5, false, flight).await;
    }
    wait_for_revenue(&mesh, 20 * 15_000).await;
    // And 7 unreadable events: 7 dead letters.
    wait_for_consumer(&mesh).await;
    let channel = amqp().await;
    for n in 0..7 {
        channel
            .basic_publish(
                mesh.names.exchange.as_str().into(),
                "booking.created".into(),
                BasicPublishOptions::default(),
                b"not protobuf \xff",
                flightmesh_events::amqp::event_properties(
                    &format!("garbage-{n}"),
                    "booking.created",
                    0,
                    None,
                ),
            )
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(30), || async {
        mesh.redis_get("stats:dead_letter_count").await.as_deref() == Some("7")
    })
    .await;

    for list in [
        "logs:candy_distribution",
        "logs:notifications",
        "logs:dead_letter",
    ] {
        assert_eq!(list_len(&mesh, list).await, 5, "{list}");
    }
    let (_, candy) = mesh.get("/api/v1/stats/candy").await;
    assert_eq!(candy["total_count"], json!(20), "{candy}");
    assert_eq!(candy["entries"].as_array().unwrap().len(), 5);
    assert!(
        candy["entries"][0]
            .as_str()
            .unwrap()
            .ends_with("Dulce entregado a Nino 19"),
        "newest first: {candy}"
    );
    let (_, notifications) = mesh.get("/api/v1/stats/notifications?limit=100").await;
    assert_eq!(notifications["total_sent"], json!(20), "{notifications}");
    assert_eq!(notifications["notifications"].as_array().unwrap().len(), 5);
    let (_, dead) = mesh.get("/api/v1/stats/dead-letters?limit=100").await;
    assert_eq!(dead["count"], json!(7), "{dead}");
    assert_eq!(dead["entries"].as_array().unwrap().len(), 5);
    let (_, general) = mesh.get("/api/v1/stats/general").await;
    assert_eq!(general["total_infant_count"], json!(20), "{general}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candy_log_written_before_its_counter_keeps_counting_from_its_length() {
    let mesh = TestMesh::start().await;
    // An earlier version's log: three lines, no counter.
    mesh.redis_lpush(
        "logs:candy_distribution",
        &[
            "Reserva 900: Dulce entregado a A",
            "Reserva 901: Dulce entregado a B",
            "Reserva 902: Dulce entregado a C",
        ],
    )
    .await;
    assert_eq!(candy_count(&mesh).await, json!(3));
    let flight = cartagena_flight(&mesh, 100.0, false).await;
    book(&mesh, "Nino", 5, false, flight).await;
    wait_for_revenue(&mesh, 15_000).await;
    assert_eq!(candy_count(&mesh).await, json!(4));
    assert_redis(&mesh, "stats:candy_log_count", "4").await;
    mesh.stop().await;
}
