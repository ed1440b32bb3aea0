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

pub use flightmesh_testkit::count;

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

/// `bookings --help` lists its commands; an unknown flag is a usage error (exit 2).
#[test]
fn the_binary_answers_help_and_refuses_unknown_flags() {
    flightmesh_testkit::assert_command_line(
        env!("CARGO_BIN_EXE_bookings"),
        &["serve", "migrate", "config"],
    );
}
