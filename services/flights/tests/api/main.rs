//! The flights service over gRPC, against a real PostgreSQL (a fresh database per test), inside
//! the mesh it needs (bookings answers `seats_available`).

mod cache;
mod catalog;
mod embeddings;
mod health;
mod outage;
mod outbox;
mod seats;

use flightmesh::testing::{Replica, TestMesh};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    CreateDestinationRequest, CreateFlightRequest, Destination, DestinationMarket, Flight,
    GetDestinationMarketRequest, GetDestinationRequest, GetFlightRequest, ListDestinationsRequest,
    ListFlightsRequest,
};
use flightmesh_proto::types::Decimal;
use flightmesh_runtime::Env;
use flightmesh_testkit::{ServiceRole, TcpProxy};
use tonic::Status;
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

/// A client of the flights service.
pub type Client = FlightServiceClient<Channel>;

pub async fn client(mesh: &TestMesh) -> Client {
    FlightServiceClient::new(mesh.channel(mesh.addrs.flights).await)
}

/// A flights service of the test's own, configured by `env` (a second replica, or one set up
/// apart from the mesh).
pub async fn start_flights(env: &Env) -> Replica {
    let host = flightmesh_flights::build(flightmesh_flights::Config::from_env(env).unwrap())
        .await
        .unwrap();
    Replica::start(host)
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

/// A promoted destination that allows pets.
pub async fn create_destination(client: &mut Client, name: &str, tax: &str) -> Destination {
    create_destination_with(client, destination_request(name, tax, true, true)).await
}

/// The destination `request` describes.
pub async fn create_destination_with(
    client: &mut Client,
    request: CreateDestinationRequest,
) -> Destination {
    client
        .create_destination(request)
        .await
        .unwrap()
        .into_inner()
}

/// A flight from Bogota with the default capacity.
pub async fn create_flight(
    client: &mut Client,
    number: &str,
    price: &str,
    destination_id: i64,
) -> Flight {
    create_flight_with(client, flight_request(number, price, destination_id)).await
}

/// A flight from Bogota with `capacity` seats.
pub async fn create_flight_seating(
    client: &mut Client,
    number: &str,
    price: &str,
    destination_id: i64,
    capacity: i32,
) -> Flight {
    let request = CreateFlightRequest {
        capacity: Some(capacity),
        ..flight_request(number, price, destination_id)
    };
    create_flight_with(client, request).await
}

async fn create_flight_with(client: &mut Client, request: CreateFlightRequest) -> Flight {
    client.create_flight(request).await.unwrap().into_inner()
}

/// The first page of destinations, at the default page size.
pub async fn list_destinations(client: &mut Client) -> Result<Vec<Destination>, Status> {
    let list = client
        .list_destinations(ListDestinationsRequest::default())
        .await?;
    Ok(list.into_inner().destinations)
}

/// The first page of flights, at the default page size.
pub async fn list_flights(client: &mut Client) -> Result<Vec<Flight>, Status> {
    let list = client.list_flights(ListFlightsRequest::default()).await?;
    Ok(list.into_inner().flights)
}

/// The market of the destination named `destination_name`.
pub async fn get_destination_market(
    client: &mut Client,
    destination_name: &str,
) -> Result<DestinationMarket, Status> {
    let market = client
        .get_destination_market(GetDestinationMarketRequest {
            destination_name: destination_name.into(),
        })
        .await?;
    Ok(market.into_inner())
}

/// The destination `id`, from the cache or the database.
pub async fn get_destination(client: &mut Client, id: i64) -> Result<Destination, Status> {
    let destination = client.get_destination(GetDestinationRequest { id }).await?;
    Ok(destination.into_inner())
}

/// The flight `id`, with the seats its bookings leave free.
pub async fn get_flight(client: &mut Client, id: i64) -> Result<Flight, Status> {
    let flight = client.get_flight(GetFlightRequest { id }).await?;
    Ok(flight.into_inner())
}

flightmesh_testkit::command_line_test!("flights", ["serve", "migrate", "config"]);
