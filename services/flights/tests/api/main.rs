//! The flights service over gRPC, against a real PostgreSQL (a fresh database per test), inside
//! the mesh it needs (bookings answers `seats_available`).

mod cache;
mod catalog;
mod embeddings;
mod health;
mod outage;
mod outbox;
mod seats;

use flightmesh::testing::TestMesh;
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    CreateDestinationRequest, CreateFlightRequest, Destination, Flight,
};
use flightmesh_proto::types::Decimal;
use flightmesh_testkit::{ServiceRole, TcpProxy};
use tonic::transport::Channel;

/// A mesh whose flights service reaches the test's database, as its own role, through a proxy the
/// test controls (`proxy.cut()` is an outage; connections fail within 500 ms), with `settings`
/// for the flights service on top.
pub async fn mesh_behind_a_database_proxy(
    settings: &'static [(&'static str, &'static str)],
) -> (TcpProxy, TestMesh) {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = proxy.addr().to_string();
    let mesh = TestMesh::start_with(move |env, db| {
        let env = env
            .set(
                "FLIGHTS_DATABASE_URL",
                db.service_url(ServiceRole::Flights)
                    .replace("127.0.0.1:5432", &proxied),
            )
            .set("FLIGHTS_DATABASE_CONNECT_TIMEOUT", "500ms");
        settings
            .iter()
            .fold(env, |env, (name, value)| env.set(*name, *value))
    })
    .await;
    (proxy, mesh)
}

pub async fn client(mesh: &TestMesh) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(mesh.channel(mesh.addrs.flights).await)
}

pub fn dec(value: &str) -> Option<Decimal> {
    Some(Decimal {
        value: value.into(),
    })
}

pub fn destination_request(
    name: &str,
    tax: &str,
    is_promotion: bool,
    allows_pets: bool,
) -> CreateDestinationRequest {
    CreateDestinationRequest {
        name: name.into(),
        tax_amount: dec(tax),
        is_promotion,
        allows_pets: Some(allows_pets),
        description: None,
    }
}

pub fn flight_request(number: &str, price: &str, destination_id: i64) -> CreateFlightRequest {
    CreateFlightRequest {
        flight_number: number.into(),
        origin: "Bogota".into(),
        base_price: dec(price),
        destination_id,
        capacity: None,
    }
}

pub async fn create_destination(
    client: &mut FlightServiceClient<Channel>,
    name: &str,
    tax: &str,
) -> Destination {
    client
        .create_destination(destination_request(name, tax, true, true))
        .await
        .unwrap()
        .into_inner()
}

pub async fn create_flight(
    client: &mut FlightServiceClient<Channel>,
    number: &str,
    price: &str,
    destination_id: i64,
) -> Flight {
    client
        .create_flight(flight_request(number, price, destination_id))
        .await
        .unwrap()
        .into_inner()
}

flightmesh_testkit::command_line_test!("flights", ["serve", "migrate", "config"]);
