//! Bookings end to end: REST through the gateway, gRPC, PostgreSQL and RabbitMQ, all real.

mod consumer;
mod events;
mod flow;
mod idempotency;
mod outbox;
mod ownership;
mod seats;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

/// A direct connection to the test's database, for checking what was written.
pub async fn sql(mesh: &TestMesh) -> AsyncPgConnection {
    AsyncPgConnection::establish(mesh.db.url()).await.unwrap()
}

/// POST /api/v1/bookings/.
pub async fn book(
    mesh: &TestMesh,
    name: &str,
    age: i64,
    pet: bool,
    flight_id: i64,
) -> (u16, Value) {
    mesh.post(
        "/api/v1/bookings/",
        &json!({"passenger_name": name, "passenger_age": age, "has_pet": pet, "flight_id": flight_id}),
    )
    .await
}

flightmesh_testkit::command_line_test!("bookings", ["serve", "migrate", "config"]);
