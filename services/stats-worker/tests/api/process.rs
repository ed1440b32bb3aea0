//! The stats worker as a real process (its own metrics registry, its own exit code), consuming
//! from an isolated queue; events are published to the broker by the test itself.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use flightmesh::testing::{AMQP_URL, Isolation, REDIS_URL, cleanup};
use flightmesh_proto::bookings::{BookingEvent, BookingSnapshot};
use flightmesh_proto::types::Decimal;
use lapin::options::BasicPublishOptions;
use prost::Message as _;
use tokio::process::{Child, Command};

use crate::amqp;

/// A stats-worker process and the names it keeps to itself; cleans them up when dropped.
pub struct Worker {
    pub child: Child,
    pub admin: SocketAddr,
    pub names: Isolation,
}

impl Worker {
    /// Starts the binary with the test defaults and `extra` variables, and waits until it
    /// consumes from its queue.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let names = Isolation {
            retry_budget: 2,
            ..Isolation::new()
        };
        // The admin port is found free and released before the worker binds it: a parallel test
        // can take it in between, and the worker then exits at once. It starts again on another.
        for _attempt in 0..3 {
            let admin = flightmesh::testing::closed_addr();
            let mut child = command(&names, admin, extra)
                .spawn()
                .expect("the stats-worker binary starts");
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().expect("the worker's status").is_some() {
                    break;
                }
                if crate::has_consumer(&names.stats_queue).await {
                    return Self {
                        child,
                        admin,
                        names,
                    };
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the worker never consumes from its queue"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("the worker exited at start three times");
    }

    /// Publishes `body` to the bookings exchange with the routing key of a booking creation and
    /// `kind` as its AMQP `type` (what a forger controls).
    pub async fn publish(&self, message_id: &str, kind: &str, body: &[u8]) {
        amqp()
            .await
            .basic_publish(
                self.names.exchange.as_str().into(),
                "booking.created".into(),
                BasicPublishOptions::default(),
                body,
                flightmesh_events::amqp::event_properties(message_id, kind, 0, None),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// `GET path` on the admin port: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        match reqwest::get(format!("http://{}{path}", self.admin)).await {
            Ok(response) => (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            ),
            Err(err) => (0, err.to_string()),
        }
    }

    /// Polls `GET /readyz` up to 200 times, 25 ms apart, until it answers `status`; returns the
    /// last answer (the caller asserts on it).
    pub async fn readyz_until(&self, status: u16) -> (u16, String) {
        let mut answer = (0, String::new());
        for _ in 0..200 {
            answer = self.admin_get("/readyz").await;
            if answer.0 == status {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        answer
    }

    /// The raw value of `{prefix}{suffix}`.
    pub async fn redis_get(&self, suffix: &str) -> Option<String> {
        let mut conn = redis_conn().await;
        redis::cmd("GET")
            .arg(format!("{}{suffix}", self.names.redis_prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    /// Waits until the exact revenue is `cents`.
    pub async fn wait_for_revenue(&self, cents: i64) {
        crate::wait_for_revenue_in(cents, || self.redis_get("stats:total_revenue_cents")).await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        cleanup(self.names.clone());
    }
}

pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The worker's command line: the test defaults, `admin` and `extra` variables.
fn command(names: &Isolation, admin: SocketAddr, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stats-worker"));
    command
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", admin.to_string())
        .env("DRAIN_DELAY", "0s")
        .env("REDIS_URL", REDIS_URL)
        .env("REDIS_KEY_PREFIX", &names.redis_prefix)
        .env("AMQP_URL", AMQP_URL)
        .env("BOOKINGS_EXCHANGE", &names.exchange)
        .env("CATALOG_EXCHANGE", &names.catalog_exchange)
        .env("STATS_QUEUE", &names.stats_queue)
        .env("RETRY_BUDGET", names.retry_budget.to_string())
        .env("RETRY_BASE_DELAY", "50ms")
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}

/// A booking.created event as the bookings service writes it.
pub fn booking_created(booking_id: i64, total_price: &str) -> Vec<u8> {
    BookingEvent {
        event_id: format!("event-{booking_id}-{total_price}"),
        event_type: "booking.created".into(),
        occurred_at: None,
        booking: Some(BookingSnapshot {
            booking_id,
            passenger_name: "Ana".into(),
            passenger_age: 30,
            has_pet: false,
            total_price: Some(Decimal {
                value: total_price.into(),
            }),
            flight_id: 1,
            flight_number: "CT-1".into(),
            destination_id: 1,
            destination_name: "Cartagena".into(),
            status: "confirmed".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// The values of `label` on the series of `metric` in a Prometheus text exposition.
pub fn label_values(
    exposition: &str,
    metric: &str,
    label: &str,
) -> std::collections::BTreeSet<String> {
    let needle = format!("{label}=\"");
    exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .filter_map(|line| {
            let start = line.find(&needle)? + needle.len();
            let end = line[start..].find('"')?;
            Some(line[start..start + end].to_owned())
        })
        .collect()
}
