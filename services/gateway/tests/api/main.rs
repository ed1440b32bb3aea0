//! The REST contract end to end: real gateway → real flights service → real PostgreSQL.

mod catalog;
mod contract;
mod edge;
mod openapi;
mod resilience;
mod validation;

use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_flights::Flights;
use flightmesh_gateway::Gateway;
use flightmesh_runtime::{CancellationToken, Env};
use flightmesh_testkit::TestDatabase;
use serde_json::{Value, json};

/// Gateway + flights on ephemeral ports with their own database. Bookings, stats and AI point at
/// a port nobody listens on: their routes must answer 503.
pub struct TestStack {
    pub db: TestDatabase,
    pub base: String,
    pub flights: SocketAddr,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl TestStack {
    pub async fn spawn() -> Self {
        Self::spawn_with(|env, _| env).await
    }

    /// `configure` adjusts the flights service's environment.
    pub async fn spawn_with(configure: impl FnOnce(Env, &TestDatabase) -> Env) -> Self {
        let db = TestDatabase::create().await;
        let shutdown = CancellationToken::new();
        let flights_env = configure(
            Env::from_pairs([
                ("GRPC_ADDR", "127.0.0.1:0"),
                ("ADMIN_ADDR", "127.0.0.1:0"),
                ("DRAIN_DELAY", "0s"),
                ("DATABASE_URL", db.url()),
            ]),
            &db,
        );
        let flights = Flights::build(flightmesh_flights::Config::from_env(&flights_env).unwrap())
            .await
            .unwrap();
        let flights_addr = flights.grpc_addr();
        tokio::spawn(flights.run(shutdown.clone()));

        let closed = closed_port().await;
        let gateway_env = Env::from_pairs([
            ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
            ("FLIGHTS_URL", format!("http://{flights_addr}")),
            ("BOOKINGS_URL", format!("http://{closed}")),
            ("STATS_URL", format!("http://{closed}")),
            ("AI_URL", format!("http://{closed}")),
            ("REQUEST_TIMEOUT", "5s".to_owned()),
            ("MAX_BODY_BYTES", "4096".to_owned()),
            ("DRAIN_DELAY", "0s".to_owned()),
        ]);
        let gateway = Gateway::build(flightmesh_gateway::Config::from_env(&gateway_env).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", gateway.local_addr());
        tokio::spawn(gateway.run(shutdown.clone()));
        Self {
            db,
            base,
            flights: flights_addr,
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        status_and_json(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    /// POST with a raw body (malformed JSON and the like).
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    /// Creates a destination and returns its id.
    pub async fn destination(&self, name: &str, tax: f64, promotion: bool, pets: bool) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/flights/destinations/",
                &json!({"name": name, "tax_amount": tax, "is_promotion": promotion, "allows_pets": pets}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Creates a flight and returns its id.
    pub async fn flight(&self, number: &str, price: f64, destination_id: i64) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/flights/",
                &json!({"flight_number": number, "origin": "Bogota", "base_price": price, "destination_id": destination_id}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_i64().unwrap()
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

/// A local port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Polls `check` until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::timeout(limit, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("condition reached in time");
}
