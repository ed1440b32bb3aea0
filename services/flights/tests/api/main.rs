//! The flights service over gRPC, against a real PostgreSQL (a fresh database per test).

mod catalog;
mod health;
mod outage;

use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_flights::{Config, Flights};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    CreateDestinationRequest, CreateFlightRequest, Destination, Flight,
};
use flightmesh_proto::types::Decimal;
use flightmesh_runtime::{CancellationToken, Env};
use flightmesh_testkit::TestDatabase;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A flights service running on ephemeral ports against its own database.
pub struct TestApp {
    pub db: TestDatabase,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), flightmesh_flights::BoxError>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|env, _| env).await
    }

    /// Starts the service with extra configuration applied to the test defaults.
    pub async fn spawn_with(configure: impl FnOnce(Env, &TestDatabase) -> Env) -> Self {
        let db = TestDatabase::create().await;
        let env = Env::from_pairs([
            ("GRPC_ADDR", "127.0.0.1:0"),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("DRAIN_DELAY", "0s"),
            ("DATABASE_URL", db.url()),
        ]);
        let env = configure(env, &db);
        let app = Flights::build(Config::from_env(&env).unwrap())
            .await
            .unwrap();
        let (grpc, admin) = (app.grpc_addr(), app.admin_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Self {
            db,
            grpc,
            admin,
            shutdown,
            task,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> FlightServiceClient<Channel> {
        FlightServiceClient::new(self.channel().await)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the service stops")
            .unwrap()
            .unwrap();
    }
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
