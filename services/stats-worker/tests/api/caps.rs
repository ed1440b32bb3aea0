//! The log lists keep the newest `LOG_LIST_CAP` entries; the totals the API answers are counted,
//! not measured on the lists.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use lapin::options::BasicPublishOptions;
use serde_json::json;

use crate::{amqp, book, wait_for_consumer, wait_for_revenue};

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
    let destination = mesh.destination("Cartagena", 50.0, false, true).await;
    let flight = mesh.flight("CT-1", 100.0, destination, 100).await;
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
    let mut redis = mesh.redis().await;
    let _: i64 = redis::cmd("LPUSH")
        .arg(format!(
            "{}logs:candy_distribution",
            mesh.names.redis_prefix
        ))
        .arg("Reserva 900: Dulce entregado a A")
        .arg("Reserva 901: Dulce entregado a B")
        .arg("Reserva 902: Dulce entregado a C")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        mesh.get("/api/v1/stats/candy").await.1["total_count"],
        json!(3)
    );
    let destination = mesh.destination("Cartagena", 50.0, false, true).await;
    let flight = mesh.flight("CT-1", 100.0, destination, 100).await;
    book(&mesh, "Nino", 5, false, flight).await;
    wait_for_revenue(&mesh, 15_000).await;
    assert_eq!(
        mesh.get("/api/v1/stats/candy").await.1["total_count"],
        json!(4)
    );
    assert_eq!(
        mesh.redis_get("stats:candy_log_count").await.as_deref(),
        Some("4")
    );
    mesh.stop().await;
}
