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

/// Creates a destination and one 100-seat flight to it; returns the flight's id.
pub async fn flight_to(
    mesh: &TestMesh,
    destination: &str,
    tax: f64,
    promotion: bool,
    pets: bool,
    number: &str,
    price: f64,
) -> i64 {
    let destination = mesh.destination(destination, tax, promotion, pets).await;
    mesh.flight(number, price, destination, 100).await
}

/// The tests' usual flight: CT-1 at `price` to Cartagena (tax 50, pets allowed), 100 seats.
pub async fn cartagena_flight(mesh: &TestMesh, price: f64, promotion: bool) -> i64 {
    flight_to(mesh, "Cartagena", 50.0, promotion, true, "CT-1", price).await
}

/// A fresh mesh with the usual flight (see [`cartagena_flight`]) → (mesh, flight id).
pub async fn mesh_with_cartagena_flight(price: f64, promotion: bool) -> (TestMesh, i64) {
    let mesh = TestMesh::start().await;
    let flight = cartagena_flight(&mesh, price, promotion).await;
    (mesh, flight)
}

/// Asserts the raw Redis key `key` (under the test's prefix) holds `value`.
pub async fn assert_redis(mesh: &TestMesh, key: &str, value: &str) {
    assert_eq!(mesh.redis_get(key).await.as_deref(), Some(value), "{key}");
}

/// The `total_count` GET /api/v1/stats/candy answers.
pub async fn candy_count(mesh: &TestMesh) -> Value {
    mesh.get("/api/v1/stats/candy").await.1["total_count"].clone()
}

/// Waits until the worker applied every booking event so far: exact revenue equals `cents`.
pub async fn wait_for_revenue(mesh: &TestMesh, cents: i64) {
    wait_for_revenue_in(cents, || mesh.redis_get("stats:total_revenue_cents")).await;
}

/// Waits until `read_revenue` (the raw `stats:total_revenue_cents` of some worker) is `cents`.
pub async fn wait_for_revenue_in<F, Fut>(cents: i64, read_revenue: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    eventually(Duration::from_secs(30), || async {
        read_revenue().await.and_then(|v| v.parse::<i64>().ok()) == Some(cents)
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

/// Waits until the mesh's stats worker consumes from its queue: a message published straight to
/// the exchange before the queue exists would be dropped (the relay's are mandatory and retried).
pub async fn wait_for_consumer(mesh: &TestMesh) {
    wait_for_queue_consumer(&mesh.names.stats_queue).await;
}

/// Waits until something consumes from `queue`.
pub async fn wait_for_queue_consumer(queue: &str) {
    eventually(Duration::from_secs(30), || has_consumer(queue)).await;
}

/// Whether something consumes from `queue` now.
pub async fn has_consumer(queue: &str) -> bool {
    matches!(passive_declare(queue).await, Ok(queue) if queue.consumer_count() > 0)
}

/// Messages waiting in `queue` (a passive declare).
pub async fn queue_depth(queue: &str) -> u32 {
    passive_declare(queue).await.unwrap().message_count()
}

/// `queue` as the broker holds it, asked on a fresh channel (asking about a missing queue
/// closes its channel).
async fn passive_declare(queue: &str) -> lapin::Result<lapin::Queue> {
    flightmesh_events::amqp::inspect_queue(&amqp().await, queue).await
}

flightmesh_testkit::command_line_test!("stats-worker", ["serve", "rebuild", "config"]);
