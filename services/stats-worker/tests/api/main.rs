//! The stats worker against real RabbitMQ, Redis and PostgreSQL, inside the whole mesh; every
//! test has its own exchanges, queues and Redis key prefix.

mod caps;
mod dead_letters;
mod end_to_end;
mod load;
mod once;
mod poison;
mod process;
mod rebuild;
mod resilience;
mod supervision;

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use flightmesh_runtime::config::Secret;
use serde_json::{Value, json};

/// POST /api/v1/bookings/ → the booking.
pub async fn book(mesh: &TestMesh, name: &str, age: i64, pet: bool, flight_id: i64) -> Value {
    let (status, body) = mesh
        .post(
            "/api/v1/bookings/",
            &json!({"passenger_name": name, "passenger_age": age, "has_pet": pet, "flight_id": flight_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the worker applied every booking event so far: exact revenue equals `cents`.
pub async fn wait_for_revenue(mesh: &TestMesh, cents: i64) {
    eventually(Duration::from_secs(30), || async {
        mesh.redis_get("stats:total_revenue_cents")
            .await
            .and_then(|v| v.parse::<i64>().ok())
            == Some(cents)
    })
    .await;
}

/// A channel to the test's broker.
pub async fn amqp() -> lapin::Channel {
    let connection = flightmesh_events::amqp::connect(
        &Secret::new(flightmesh::testing::AMQP_URL.to_owned()),
        "stats test",
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    // The connection lives as long as the process; tests are short.
    std::mem::forget(connection);
    channel
}

/// Messages waiting in `queue` (a passive declare).
/// Waits until the mesh's stats worker consumes from its queue: a message published straight to
/// the exchange before the queue exists would be dropped (the relay's are mandatory and retried).
pub async fn wait_for_consumer(mesh: &TestMesh) {
    wait_for_queue_consumer(&mesh.names.stats_queue).await;
}

/// Waits until something consumes from `queue`.
pub async fn wait_for_queue_consumer(queue: &str) {
    eventually(Duration::from_secs(30), || async {
        // A fresh channel each time: a passive declare of a missing queue closes its channel.
        let declared = amqp()
            .await
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        matches!(declared, Ok(queue) if queue.consumer_count() > 0)
    })
    .await;
}

pub async fn queue_depth(queue: &str) -> u32 {
    let channel = amqp().await;
    let declared = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    declared.message_count()
}

/// `stats-worker --help` lists its commands; an unknown flag is a usage error (exit 2).
#[test]
fn the_binary_answers_help_and_refuses_unknown_flags() {
    flightmesh_testkit::assert_command_line(
        env!("CARGO_BIN_EXE_stats-worker"),
        &["serve", "rebuild", "config"],
    );
}
