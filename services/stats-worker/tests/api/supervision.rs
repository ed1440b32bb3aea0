//! A consumer that dies makes the worker unready and the process exit non-zero, so Kubernetes
//! restarts it — instead of a ready pod that consumes nothing.

use std::time::Duration;

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};

use crate::amqp;
use crate::process::Worker;

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_dies_makes_the_worker_unready_and_exit_non_zero() {
    let mut worker = Worker::start(&[("DRAIN_DELAY", "3s")]).await;
    let (status, ready) = worker.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");

    // Someone deletes the worker's queue (the broker cancels its consumer) and declares it
    // again with other arguments: the consumer's reconnection cannot declare its topology.
    let channel = amqp().await;
    let queue = worker.names.stats_queue.clone();
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let mut other = FieldTable::default();
    other.insert(ShortString::from("x-max-length"), AMQPValue::LongLongInt(1));
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            other,
        )
        .await
        .unwrap();

    // Unready while it drains, naming the task and its cause.
    let seen = worker.readyz_until(503).await;
    assert_eq!(seen.0, 503, "{}", seen.1);
    let body: serde_json::Value = serde_json::from_str(&seen.1).unwrap();
    let cause = body["failed"]["event consumer"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cause.contains("refused the consumer's topology") && cause.contains("PRECONDITION"),
        "{body}"
    );

    // Then it exits non-zero, saying why.
    let status = tokio::time::timeout(Duration::from_secs(30), worker.child.wait())
        .await
        .expect("the worker exits by itself")
        .unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(worker.child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("event consumer"), "{stderr}");
}
