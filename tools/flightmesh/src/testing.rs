//! The mesh for integration tests: every service on an ephemeral port, a fresh database, and a
//! unique RabbitMQ exchange, all dropped when the test ends. Enabled by the `testing` feature.

use std::future::Future;
use std::time::Duration;

use flightmesh_runtime::Env;
use flightmesh_testkit::TestDatabase;
use serde_json::Value;
use tonic::transport::Channel;

use crate::model_stub::Stub;
use crate::{Addresses, Service, Stack};

mod isolation;
mod replica;

pub use isolation::{Isolation, LIVE_ISOLATIONS, cleanup, sweep_orphans, test_env};
pub use replica::Replica;

/// The default local RabbitMQ, as the services default to it.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The default local Redis.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A running mesh owned by one test.
pub struct TestMesh {
    /// The test's database (dropped after the mesh stops).
    pub db: TestDatabase,
    /// Where everything listens.
    pub addrs: Addresses,
    /// `http://<gateway>`.
    pub base: String,
    /// A client for the gateway.
    pub http: reqwest::Client,
    /// The exchanges, queue and Redis prefix of this test.
    pub names: Isolation,
    stack: Option<Stack>,
}

impl TestMesh {
    /// Starts the whole mesh with the test defaults.
    pub async fn start() -> Self {
        Self::start_with(|env, _| env).await
    }

    /// Starts the mesh with `configure` applied to the test environment (prefix a variable with
    /// the service to target one: `FLIGHTS_DATABASE_URL`).
    ///
    /// # Panics
    /// If the mesh cannot start: the test cannot run without it.
    pub async fn start_with(configure: impl FnOnce(Env, &TestDatabase) -> Env + 'static) -> Self {
        Self::builder().configure(configure).start().await
    }

    /// Starts the mesh with its AI agent on `model` (the model stub) and `settings` on top of the
    /// test environment.
    pub async fn start_with_model(model: &Stub, settings: &[(&str, &str)]) -> Self {
        let base_url = model.base_url();
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|&(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Self::start_with(move |env, _| {
            let env = env.set("AI_AI_BASE_URL", base_url);
            settings
                .into_iter()
                .fold(env, |env, (name, value)| env.set(name, value))
        })
        .await
    }

    /// A mesh to start: the whole of it with the test defaults unless told otherwise.
    #[must_use]
    pub fn builder() -> TestMeshBuilder {
        TestMeshBuilder {
            services: Service::ALL.to_vec(),
            configure: Box::new(|env, _| env),
        }
    }
}

/// A change to the test environment (see [`TestMeshBuilder::configure`]).
type Configure = Box<dyn FnOnce(Env, &TestDatabase) -> Env>;

/// What [`TestMesh::builder`] starts: which services behind the gateway, with which environment.
pub struct TestMeshBuilder {
    services: Vec<Service>,
    configure: Configure,
}

impl TestMeshBuilder {
    /// Only the gateway and `services`: a test of one service stops depending on the others
    /// (their addresses refuse connections: calls to them answer 503).
    #[must_use]
    pub fn only(mut self, services: &[Service]) -> Self {
        self.services = services.to_vec();
        self
    }

    /// `configure` applied to the test environment (prefix a variable with the service to
    /// target one: `FLIGHTS_DATABASE_URL`).
    #[must_use]
    pub fn configure(
        mut self,
        configure: impl FnOnce(Env, &TestDatabase) -> Env + 'static,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// Starts it on a fresh database, exchanges, queue and Redis prefix.
    ///
    /// # Panics
    /// If the mesh cannot start: the test cannot run without it.
    pub async fn start(self) -> TestMesh {
        let db = TestDatabase::create().await;
        let names = Isolation::new();
        let env = (self.configure)(test_env(&db, &names), &db);
        let stack = Stack::start_services(&env, &self.services)
            .await
            .expect("the test mesh starts");
        TestMesh {
            addrs: stack.addrs,
            base: format!("http://{}", stack.addrs.gateway),
            http: reqwest::Client::new(),
            db,
            names,
            stack: Some(stack),
        }
    }
}

impl TestMesh {
    /// `http://<gateway><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET through the gateway → (status, JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        status_and_json(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    /// POST JSON through the gateway → (status, JSON).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        status_and_json(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POST a raw body through the gateway → (status, JSON).
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        status_and_json(response).await
    }

    /// A connected channel to a service's gRPC address.
    pub async fn channel(&self, addr: std::net::SocketAddr) -> Channel {
        Channel::from_shared(format!("http://{addr}"))
            .expect("a valid URL")
            .connect()
            .await
            .expect("connect to the service")
    }

    /// Creates a destination through the gateway; returns its id.
    pub async fn destination(&self, name: &str, tax: f64, promotion: bool, pets: bool) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/flights/destinations/",
                &serde_json::json!({"name": name, "tax_amount": tax, "is_promotion": promotion, "allows_pets": pets}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_i64().expect("an id")
    }

    /// Creates a flight through the gateway; returns its id.
    pub async fn flight(
        &self,
        number: &str,
        price: f64,
        destination_id: i64,
        capacity: i32,
    ) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/flights/",
                &serde_json::json!({
                    "flight_number": number, "origin": "Bogota", "base_price": price,
                    "destination_id": destination_id, "capacity": capacity
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_i64().expect("an id")
    }

    /// The flight most tests book on: `CT-1`, 1000.00 from Bogota to a new destination Cartagena
    /// (tax 50.00, on promotion, pets allowed), with `capacity` seats; returns the flight's id.
    pub async fn cartagena_flight(&self, capacity: i32) -> i64 {
        let cartagena = self.destination("Cartagena", 50.0, true, true).await;
        self.flight("CT-1", 1000.0, cartagena, capacity).await
    }

    /// Stops every service and waits for them.
    ///
    /// # Panics
    /// If a service stopped with an error.
    pub async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            tokio::time::timeout(Duration::from_secs(30), stack.stop())
                .await
                .expect("the mesh stops in time")
                .expect("every service stops cleanly");
        }
    }
}

impl TestMesh {
    /// A Redis connection (for checking the raw keys).
    ///
    /// # Panics
    /// If Redis is unreachable.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(REDIS_URL)
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis must run for the tests")
    }

    /// The test's name for the Redis key `suffix`: `{prefix}{suffix}`.
    fn redis_key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.names.redis_prefix)
    }

    /// Runs one Redis command on a fresh connection; panics with `what` if it fails.
    async fn redis_run<T: redis::FromRedisValue>(&self, command: &redis::Cmd, what: &str) -> T {
        let mut conn = self.redis().await;
        command.query_async(&mut conn).await.expect(what)
    }

    /// The raw value of `{prefix}{suffix}` (a string key), if set.
    pub async fn redis_get(&self, suffix: &str) -> Option<String> {
        self.redis_run(redis::cmd("GET").arg(self.redis_key(suffix)), "GET")
            .await
    }

    /// The whole list `{prefix}{suffix}` (LRANGE 0 -1), newest first.
    pub async fn redis_list(&self, suffix: &str) -> Vec<String> {
        let command = redis::cmd("LRANGE")
            .arg(self.redis_key(suffix))
            .arg(0)
            .arg(-1)
            .clone();
        self.redis_run(&command, "LRANGE").await
    }

    /// Pushes `values` onto the list `{prefix}{suffix}` (LPUSH); returns the list's new length.
    pub async fn redis_lpush(&self, suffix: &str, values: &[&str]) -> i64 {
        let command = redis::cmd("LPUSH")
            .arg(self.redis_key(suffix))
            .arg(values)
            .clone();
        self.redis_run(&command, "LPUSH").await
    }

    /// Redis loses the statistics: deletes every `stats:*` key and the candy log; returns how many
    /// keys were deleted.
    pub async fn forget_statistics(&self) -> i64 {
        let mut keys = self.redis_keys("stats:*").await;
        keys.push(self.redis_key("logs:candy_distribution"));
        self.redis_run(redis::cmd("DEL").arg(&keys), "DEL").await
    }

    /// The full names of the keys matching `{prefix}{pattern}` (KEYS).
    pub async fn redis_keys(&self, pattern: &str) -> Vec<String> {
        self.redis_run(redis::cmd("KEYS").arg(self.redis_key(pattern)), "KEYS")
            .await
    }
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            stack.shutdown_token().cancel();
            // Waits for the services to stop before the cleanup: a stats worker still running
            // would declare its queues again once they are deleted. Only a multi-thread runtime
            // can wait here; elsewhere the services stop with the runtime.
            if let Ok(runtime) = tokio::runtime::Handle::try_current()
                && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            {
                tokio::task::block_in_place(|| {
                    runtime.block_on(tokio::time::timeout(Duration::from_secs(30), stack.wait()))
                })
                .ok();
            }
        }
        cleanup(self.names.clone());
    }
}

/// (status, JSON body) of a response; panics with the body if it is not JSON.
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

/// A local address nothing listens on (its port was free a moment ago): a dependency that is down.
pub fn closed_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
}

/// Polls `check` until it holds, for at most `limit`.
///
/// # Panics
/// When `limit` passes first.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::timeout(limit, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("condition reached in time");
}
