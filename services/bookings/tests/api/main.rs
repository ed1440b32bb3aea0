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

/// The test's database, with the settings the service would read for it.
pub fn db_config(mesh: &TestMesh) -> flightmesh_db::DbConfig {
    let env = flightmesh_runtime::config::Env::from_pairs([("DATABASE_URL", mesh.db.url())]);
    flightmesh_db::DbConfig::from_env(&env).unwrap()
}

/// A pool on the test's database, configured as the service configures its own.
pub fn pool(mesh: &TestMesh) -> flightmesh_db::PgPool {
    flightmesh_db::pool(&db_config(mesh))
}

/// Rows in `bookings.bookings`.
pub async fn bookings_stored(mesh: &TestMesh) -> i64 {
    mesh.db
        .count("SELECT count(*) FROM bookings.bookings")
        .await
}

/// Rows in `bookings.outbox`, published or not.
pub async fn events_stored(mesh: &TestMesh) -> i64 {
    mesh.db.count("SELECT count(*) FROM bookings.outbox").await
}

/// The seat ledger's count for the test's flight (the tests that read it book on one flight).
pub async fn seats_taken(mesh: &TestMesh) -> i64 {
    mesh.db
        .count("SELECT seats_taken::bigint FROM bookings.flight_seats")
        .await
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
