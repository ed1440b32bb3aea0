//! Dependencies going away: answers are 503 with a clear message, and everything recovers by
//! itself when they come back.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use flightmesh_testkit::TcpProxy;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{admin_metrics, closed_port, mesh_with, send_as, start_gateway};
use crate::{TestStack, eventually, status_and_json};

/// The contract's answer when a dependency cannot take the call.
const UNAVAILABLE: &str = "Servicio temporalmente no disponible. Intente de nuevo.";

#[tokio::test(flavor = "multi_thread")]
async fn database_restart_gives_503_then_recovers_without_restarting_anything() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = proxy.addr().to_string();
    let stack = TestStack::start_with(move |env, db| {
        env.set(
            "FLIGHTS_DATABASE_URL",
            db.url().replace("127.0.0.1:5432", &proxied),
        )
        .set("FLIGHTS_DATABASE_CONNECT_TIMEOUT", "500ms")
        // The database path itself, not the catalog cache in front of it.
        .set("FLIGHTS_CATALOG_CACHE_TTL", "0s")
        .set("FLIGHTS_SEATS_CACHE_TTL", "0s")
    })
    .await;
    let id = stack.destination("Cartagena", 50.0, true, true).await;

    // The database goes away: every request is a 503 with a message, not a 500 or a hang.
    proxy.cut();
    for path in [
        "/api/v1/flights/",
        &format!("/api/v1/flights/destinations/{id}"),
    ] {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body, json!({"detail": UNAVAILABLE}));
    }
    let (status, _) = stack
        .post(
            "/api/v1/flights/destinations/",
            &json!({"name": "Lima", "tax_amount": 1}),
        )
        .await;
    assert_eq!(status, 503);

    // It comes back: the same processes serve again.
    proxy.restore();
    eventually(Duration::from_secs(10), || async {
        stack.get("/api/v1/flights/").await.0 == 200
    })
    .await;
    let (status, body) = stack
        .get(&format!("/api/v1/flights/destinations/{id}"))
        .await;
    assert_eq!((status, body["name"].clone()), (200, json!("Cartagena")));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_backends_cost_nothing_after_the_fact() {
    let stack = TestStack::start_with(|env, _| env.set("FLIGHTS_CATALOG_CACHE_TTL", "0s")).await;
    stack.destination("Cartagena", 50.0, true, true).await;
    assert!(stack.db.terminate_backends().await >= 1);
    let (status, list) = stack.get("/api/v1/flights/destinations/").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_that_are_down_answer_503_and_readyz_names_them() {
    // A gateway whose services are all unreachable (nothing listens on their port).
    let closed = closed_port();
    let db = flightmesh_testkit::TestDatabase::create().await;
    let env = flightmesh_runtime::Env::from_pairs([
        ("DATABASE_URL", db.url().to_owned()),
        ("ENVIRONMENT", "development".to_owned()),
        ("ACCESS_POLICY", "compatible".to_owned()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("FLIGHTS_URL", format!("http://{closed}")),
        ("BOOKINGS_URL", format!("http://{closed}")),
        ("STATS_URL", format!("http://{closed}")),
        ("AI_URL", format!("http://{closed}")),
    ]);
    let gateway = start_gateway(&env).await;
    let base = gateway.base;
    let http = reqwest::Client::new();

    let booking = json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": 1});
    let request = http.post(format!("{base}/api/v1/bookings/")).json(&booking);
    let (status, body) = send_as(request, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["detail"],
        json!("El servicio bookings no esta disponible. Intente de nuevo mas tarde.")
    );
    let (status, _) = send_as(http.get(format!("{base}/api/v1/stats/general")), None).await;
    assert_eq!(status, 503);

    let (status, body) = send_as(http.get(format!("{base}/readyz")), None).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["services"]["identity"],
        json!("SERVING"),
        "the gateway's own identity service"
    );
    for down in ["flights", "bookings", "stats", "ai"] {
        assert!(
            body["services"][down]
                .as_str()
                .unwrap()
                .starts_with("unreachable"),
            "{body}"
        );
        assert!(body["status"].as_str().unwrap().contains(down), "{body}");
    }
    // The gateway itself is ready: the routes that need no upstream (auth, docs) still work,
    // so the readiness probe (`/readyz/self`) keeps it in the Service.
    let (status, body) = send_as(http.get(format!("{base}/readyz/self")), None).await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    gateway.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saturated_pool_sheds_fast_503s_and_never_flips_readiness() {
    // One pooled connection, two calls in flight at most, a 20 ms wait beyond that. Another
    // session locks the table: the one pooled connection waits behind the lock with the first
    // read, the second read waits for that connection — the pool is saturated.
    let (stack, mut held) = HeldReads::start(
        &[
            ("FLIGHTS_DATABASE_MAX_CONNECTIONS", "1"),
            ("FLIGHTS_DATABASE_CONNECT_TIMEOUT", "30s"),
            ("FLIGHTS_MAX_CONCURRENT_REQUESTS", "2"),
            ("FLIGHTS_SHED_WAIT", "20ms"),
        ],
        2,
    )
    .await;
    // Sequencing only: the second read reaches the service and takes the last slot.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A third read is shed at once: 503, the contract's message, Retry-After.
    let started = std::time::Instant::now();
    assert_shed(&stack, &held.path).await;
    let shed_after = started.elapsed();
    eprintln!("shed after {shed_after:?} (the pool would have made it wait up to 30 s)");

    // Readiness reports the database, not the pool's queue: still ready, on both ports.
    let flights_ready = reqwest::get(format!("http://{}/readyz", stack.addrs.admin[0]))
        .await
        .unwrap();
    assert_eq!(
        flights_ready.status(),
        200,
        "{:?}",
        flights_ready.text().await
    );
    assert_eq!(stack.get("/readyz").await.0, 200);
    let health = HealthClient::new(stack.channel(stack.addrs.flights).await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    // The lock goes: the waiting reads are served.
    held.release().await;
}

/// Reads of a destination held up behind a lock on its table.
struct HeldReads {
    /// The destination's path.
    path: String,
    /// The session holding an exclusive lock on the destinations table until it commits.
    locker: AsyncPgConnection,
    /// The reads waiting behind it → their status.
    reads: Vec<tokio::task::JoinHandle<u16>>,
}

impl HeldReads {
    /// Starts the stack with `settings` and no flights caches (reads reach the database, where
    /// the lock is), creates a destination, locks its table from another session and starts
    /// `count` reads of it that wait behind the lock.
    async fn start(settings: &[(&str, &str)], count: usize) -> (TestStack, Self) {
        let uncached = [
            ("FLIGHTS_CATALOG_CACHE_TTL", "0s"),
            ("FLIGHTS_SEATS_CACHE_TTL", "0s"),
        ];
        let stack = mesh_with(&[settings, &uncached].concat()).await;
        let id = stack.destination("Cartagena", 50.0, true, true).await;
        let path = format!("/api/v1/flights/destinations/{id}");
        let mut locker = AsyncPgConnection::establish(stack.db.url()).await.unwrap();
        locker
            .batch_execute("BEGIN; LOCK TABLE flights.destinations IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let reads = (0..count).map(|_| spawn_get(&stack, &path)).collect();
        wait_for_a_lock_wait(&stack).await;
        let held = Self {
            path,
            locker,
            reads,
        };
        (stack, held)
    }

    /// The lock goes: every held read is served.
    async fn release(&mut self) {
        self.locker.batch_execute("COMMIT").await.unwrap();
        for read in self.reads.drain(..) {
            assert_eq!(read.await.unwrap(), 200);
        }
    }
}

/// A GET of `path` in the background → its status.
fn spawn_get(stack: &TestStack, path: &str) -> tokio::task::JoinHandle<u16> {
    let (http, url) = (stack.http.clone(), stack.url(path));
    tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
}

/// Waits until a session of the test database waits for a lock.
async fn wait_for_a_lock_wait(stack: &TestStack) {
    eventually(Duration::from_secs(10), || async {
        waiting_on_locks(stack.db.url()).await >= 1
    })
    .await;
}

/// Sessions of the test database waiting for a lock.
async fn waiting_on_locks(url: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    flightmesh_testkit::count(&mut conn, "SELECT count(*) FROM pg_locks WHERE NOT granted").await
}

/// A GET of `path` is shed at once: 503, `Retry-After: 1`, the contract's message.
async fn assert_shed(stack: &TestStack, path: &str) {
    let response = stack.http.get(stack.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let (_, body) = status_and_json(response).await;
    assert_eq!(body, json!({"detail": UNAVAILABLE}));
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_its_limit_the_gateway_answers_503_at_once_before_calling_anything() {
    // The one slot: a read stuck behind the lock.
    let (stack, mut held) = HeldReads::start(
        &[
            ("GATEWAY_MAX_CONCURRENT_REQUESTS", "1"),
            ("GATEWAY_SHED_WAIT", "10ms"),
        ],
        1,
    )
    .await;

    assert_shed(&stack, &held.path).await;
    // Health and the gateway's own routes are not calls to anything: still answered.
    assert_eq!(stack.get("/health").await.0, 200);
    let metrics = admin_metrics(&stack).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_shed_total ") && !l.ends_with(" 0")),
        "gateway_shed_total counted it"
    );

    held.release().await;
    assert_eq!(stack.get(&held.path).await.0, 200, "the slot is free again");
}

/// The gateway drains on its host like every service: from the stop, both its public port
/// (`/readyz/self`) and its admin port (`/readyz`) answer 503 for the drain delay while requests
/// are still served; then the ports close and `run` returns.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_gateway_drains_on_both_ports_then_closes() {
    let db = flightmesh_testkit::TestDatabase::create().await;
    let env = flightmesh_runtime::Env::from_pairs([
        ("DATABASE_URL", db.url()),
        ("ENVIRONMENT", "development"),
        ("ACCESS_POLICY", "compatible"),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("DRAIN_DELAY", "2s"),
    ]);
    let gateway = start_gateway(&env).await;
    let (public, admin) = (gateway.base, gateway.admin);
    let (shutdown, running) = (gateway.stop, gateway.task);
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(status(format!("{public}/readyz/self")).await.unwrap(), 200);
    assert_eq!(status(format!("{admin}/readyz")).await.unwrap(), 200);

    shutdown.cancel();
    eventually(Duration::from_secs(1), || async {
        status(format!("{admin}/readyz")).await.ok() == Some(503)
    })
    .await;
    assert_eq!(status(format!("{public}/readyz/self")).await.unwrap(), 503);
    assert_eq!(
        status(format!("{public}/health")).await.unwrap(),
        200,
        "still serving during the drain"
    );

    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the gateway stops after its drain")
        .unwrap()
        .expect("a clean stop");
    assert!(
        status(format!("{public}/health")).await.is_err(),
        "the public port is closed"
    );
}
