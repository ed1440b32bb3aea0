//! Forged and corrupted events published straight to the real broker: each is dead-lettered
//! with its cause, the worker keeps consuming, and the metric's label set does not grow beyond
//! `unknown`.

use std::collections::BTreeSet;
use std::time::Duration;

use flightmesh::testing::eventually;
use serde_json::Value;

use crate::process::{Worker, booking_created, label_values, redis_conn};
use crate::queue_depth;

#[tokio::test(flavor = "multi_thread")]
async fn forged_events_are_dead_lettered_and_the_worker_keeps_consuming() {
    let mut worker = Worker::start(&[]).await;
    worker
        .publish("valid-1", "booking.created", &booking_created(1, "100.00"))
        .await;
    worker.wait_for_revenue(10_000).await;
    let (_, before) = worker.admin_get("/metrics").await;
    let labels_before = label_values(&before, "stats_events_total", "event_type");
    assert_eq!(
        labels_before,
        BTreeSet::from(["booking.created".to_owned()]),
        "{before}"
    );

    // (message id, AMQP type, body, what the dead letter's error says)
    let forged: [(&str, &str, Vec<u8>, &str); 6] = [
        (
            "huge-price",
            "booking.created",
            booking_created(2, "10000000000000000000000000000"),
            "total_price",
        ),
        (
            "price-beyond-the-column",
            "booking.created",
            booking_created(3, "10000000000.00"),
            "beyond the largest price",
        ),
        (
            "huge-id",
            "booking.created",
            booking_created(9_000_000_000_000_000, "100.00"),
            "beyond the largest accepted id",
        ),
        (
            "negative-id",
            "booking.created",
            booking_created(-5, "100.00"),
            "not positive",
        ),
        (
            "unknown-type",
            "booking.exploded-by-a-forger",
            booking_created(4, "100.00"),
            "unknown event type",
        ),
        (
            "malformed-body",
            "booking.created",
            b"\x0a\xff\xff\xff\xff\xff not protobuf".to_vec(),
            "undecodable",
        ),
    ];
    for (id, kind, body, _) in &forged {
        worker.publish(id, kind, body).await;
    }
    // A valid event after them is applied: the consumer is alive.
    worker
        .publish("valid-2", "booking.created", &booking_created(5, "50.00"))
        .await;
    worker.wait_for_revenue(15_000).await;

    let dead_queue = format!("{}.dead", worker.names.stats_queue);
    eventually(Duration::from_secs(30), || async {
        queue_depth(&dead_queue).await == 6
    })
    .await;
    assert_eq!(
        worker.redis_get("stats:dead_letter_count").await.as_deref(),
        Some("6")
    );
    let mut conn = redis_conn().await;
    let entries: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{}logs:dead_letter", worker.names.redis_prefix))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for (id, kind, _, cause) in &forged {
        let entry = entries
            .iter()
            .find(|e| e["args"]["message_id"] == *id)
            .unwrap_or_else(|| panic!("{id} dead-lettered: {entries:?}"));
        assert_eq!(entry["task"], *kind, "{entry}");
        assert_eq!(
            entry["args"]["retries"], 0,
            "poison is not retried: {entry}"
        );
        assert!(
            entry["error"].as_str().unwrap().contains(cause),
            "{id}: {entry}"
        );
        assert!(entry["timestamp"].is_string());
    }
    // The huge id allocated no bitmap: only the shard of the valid ids exists.
    let blocks: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!(
            "{}stats:applied_blocks:booking.created",
            worker.names.redis_prefix
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(blocks, ["0"]);

    // Still running, still ready; the label set grew by `unknown` only.
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker is alive"
    );
    let (status, ready) = worker.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let (_, after) = worker.admin_get("/metrics").await;
    let mut expected = labels_before.clone();
    expected.insert("unknown".to_owned());
    assert_eq!(
        label_values(&after, "stats_events_total", "event_type"),
        expected,
        "{after}"
    );
    assert!(!after.contains("exploded"), "{after}");
    assert!(after.contains("stats_poison_events_total 6"), "{after}");
}
