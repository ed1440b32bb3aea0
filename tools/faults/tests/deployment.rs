//! Faults and restarts in the deployment shape: each service its own process with two replicas
//! (one AI agent), clients booking at a steady open-loop rate throughout. After each scenario:
//! acknowledged bookings all present once, events applied exactly once (Redis equals
//! PostgreSQL's sums), nothing oversold, no 500, every process that was not killed alive and
//! ready — and the time until bookings succeed again, printed (`FAULT-VERDICT` lines, the figures
//! of docs/reliability.md).
//!
//! The scenarios run one at a time (each deployment loads the machine's two cores); the
//! PostgreSQL and RabbitMQ restarts are of servers of their own:
//! `cargo test -p flightmesh-faults --test deployment -- --nocapture`.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use flightmesh_faults::deploy::{can_isolate_names, wait_until};
use flightmesh_faults::{
    Bookers, ClientReport, Deployment, Options, PrivatePostgres, PrivateRabbitMq, Service, or_skip,
};

/// Bookings per second during every scenario.
const RATE: u32 = 40;

/// One scenario at a time: each deployment loads the machine's two cores.
static SERIAL: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// The deployment, or `None` (with the reason printed) on a machine that cannot run it — a CI
/// runner without root or without `redis-server`. The test command sets
/// `FLIGHTMESH_REQUIRE_FAULTS=1`: there a missing capability fails instead.
async fn deployment(options: Options) -> Option<Deployment> {
    let missing = can_isolate_names().err().or_else(|| {
        std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
            .then(|| "redis-server is not installed".to_owned())
    });
    or_skip("the deployment shape", missing.map_or(Ok(()), Err))?;
    Some(Deployment::start(options).await)
}

/// Sum of a counter's series whose labels contain `labels`, on a replica's `/metrics`.
async fn counter(url: &str, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The time since `at`, as the scenarios print it (`12.3 s`).
fn seconds_since(at: Instant) -> String {
    format!("{:.1} s", at.elapsed().as_secs_f64())
}

/// A fault scenario: clients booking throughout, 3 s of steady traffic, the fault, `recovery`
/// more of traffic, then the invariants. Scenarios run one at a time.
struct Scenario {
    /// As the verdict names it.
    name: &'static str,
    options: Options,
    /// How long the clients keep booking after the fault before the invariants are checked.
    recovery: Duration,
}

/// What a scenario leaves for checks of its own: the deployment, still running in the
/// scenario's turn, and what the clients saw.
struct Ran {
    d: Deployment,
    report: ClientReport,
    // Declared last: released after the deployment is dropped.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Scenario {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            options: Options::default(),
            recovery: Duration::ZERO,
        }
    }

    fn options(self, options: Options) -> Self {
        Self { options, ..self }
    }

    fn recovery(self, recovery: Duration) -> Self {
        Self { recovery, ..self }
    }

    /// Runs the scenario with a fault that strikes at once: `fault` gets the instant it struck
    /// at, and returns when the fault is injected (or over).
    async fn strike(
        self,
        fault: impl AsyncFnOnce(&mut Deployment, &Bookers, Instant),
    ) -> Option<Ran> {
        self.run(async |d, clients| {
            let at = Instant::now();
            fault(d, clients, at).await;
            at
        })
        .await
    }

    /// Runs the scenario with a fault that chooses its moment: `fault` returns the instant it
    /// struck at. `None` (with the reason printed) on a machine that cannot run the deployment.
    async fn run(
        self,
        fault: impl AsyncFnOnce(&mut Deployment, &Bookers) -> Instant,
    ) -> Option<Ran> {
        let serial = SERIAL.lock().await;
        let mut d = deployment(self.options).await?;
        let clients = Bookers::start(d.gateways(), d.catalog().await, RATE);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let at = fault(&mut d, &clients).await;
        tokio::time::sleep(self.recovery).await;
        let report = clients.stop().await;
        d.check(self.name, &report, at).await.assert_holds();
        Some(Ran {
            d,
            report,
            _serial: serial,
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_1_a_bookings_process_killed_between_publish_and_mark() {
    // bookings-1's relay holds each confirmed batch unmarked (the test hook); its lease is short
    // so that bookings-2's relay takes the rows over soon.
    let options = Options::default()
        .with_env("bookings", "OUTBOX_LEASE", "3s")
        .with_env("bookings-1", "OUTBOX_RELAY_TEST_PAUSE", "60s");
    let Some(ran) = Scenario::new("1. kill -9 bookings between publish and mark")
        .options(options)
        // The lease runs out; bookings-2 publishes the batch again.
        .recovery(Duration::from_secs(10))
        .run(async |d, _| {
            wait_until(
                Duration::from_secs(30),
                "bookings-1 published a batch",
                || async { d.logged("bookings-1", "outbox batch published, not yet marked") },
            )
            .await;
            let fault = Instant::now();
            d.kill("bookings-1");
            fault
        })
        .await
    else {
        return;
    };
    let mut absorbed = 0.0;
    for stats in ran.d.replicas(Service::Stats) {
        absorbed += counter(
            &ran.d.metrics_url(&stats),
            "stats_events_total",
            r#"outcome="duplicate""#,
        )
        .await;
    }
    assert!(
        absorbed >= 1.0,
        "the killed relay's batch was published again and absorbed by apply-once"
    );
    eprintln!("duplicates absorbed by apply-once: {absorbed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_2_a_gateway_killed() {
    Scenario::new("2. kill -9 one gateway")
        .recovery(Duration::from_secs(4))
        .strike(async |d, clients, _| {
            d.kill("gateway-1");
            // The clients retry on the other gateway at once; the Service drops the dead
            // endpoint once its readiness probe fails (here after 2 s).
            tokio::time::sleep(Duration::from_secs(2)).await;
            clients.set_gateways(d.gateways());
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_3_a_flights_process_killed() {
    Scenario::new("3. kill -9 one flights")
        .recovery(Duration::from_secs(8))
        .strike(async |d, _, _| d.kill("flights-1"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_4_both_stats_workers_killed_for_10_seconds() {
    Scenario::new("4. kill -9 both stats workers for 10 s, then restart")
        .recovery(Duration::from_secs(3))
        .strike(async |d, _, fault| {
            d.kill("stats-worker-1");
            d.kill("stats-worker-2");
            tokio::time::sleep(Duration::from_secs(10)).await;
            d.restart("stats-worker-1");
            d.restart("stats-worker-2");
            d.wait_ready("stats-worker-1").await;
            d.wait_ready("stats-worker-2").await;
            eprintln!("stats workers back {} after the kill", seconds_since(fault));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_5_a_real_postgresql_restart() {
    // A server of the scenario's own: restarting the machine's would cut every other test's
    // connections too.
    let Some(postgres) = or_skip("5. PostgreSQL restart", PrivatePostgres::start()) else {
        return;
    };
    Scenario::new("5. PostgreSQL restarted")
        .options(Options::default().on_postgres(postgres.admin_url()))
        .recovery(Duration::from_secs(8))
        .strike(async |d, _, fault| {
            let backends =
                d.db.count(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .await;
            assert!(
                backends > 0,
                "the deployment works on the scenario's own server"
            );
            postgres.restart();
            eprintln!(
                "PostgreSQL {} restarted in {}, cutting {backends} connections",
                postgres.cluster(),
                seconds_since(fault)
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_6_a_real_rabbitmq_restart() {
    // A broker of the scenario's own: stopping the machine's would disconnect every other
    // test's publishers and consumers too.
    let Some(rabbitmq) = or_skip("6. RabbitMQ restart", PrivateRabbitMq::start()) else {
        return;
    };
    Scenario::new("6. RabbitMQ restarted (stop_app, 5 s, start_app)")
        .options(Options::default().on_rabbitmq(rabbitmq.amqp_url()))
        .recovery(Duration::from_secs(12))
        .strike(async |_, _, fault| {
            let connections = rabbitmq
                .ctl(&["list_connections", "name"])
                .expect("the broker lists its connections");
            assert!(
                connections.lines().count() > 0,
                "the deployment works on the scenario's own broker"
            );
            rabbitmq.ctl(&["stop_app"]).expect("stop_app");
            tokio::time::sleep(Duration::from_secs(5)).await;
            rabbitmq.ctl(&["start_app"]).expect("start_app");
            eprintln!(
                "RabbitMQ {} back {} after stop_app ({} connections cut)",
                rabbitmq.node(),
                seconds_since(fault),
                connections.lines().count()
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_7_a_redis_restart_with_its_data_lost() {
    Scenario::new("7. Redis restarted empty, statistics rebuilt")
        .recovery(Duration::from_secs(3))
        .strike(async |d, _, fault| {
            d.kill_redis();
            tokio::time::sleep(Duration::from_secs(2)).await;
            d.start_redis().await;
            // The documented recovery (docs/operations.md, "Rebuilding the statistics"), while
            // the clients keep booking.
            let rebuilt = reqwest::Client::new()
                .post(format!("{}/api/v1/stats/rebuild", d.gateways()[0]))
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .expect("the rebuild answers");
            let status = rebuilt.status();
            let body = rebuilt.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{body}");
            eprintln!(
                "statistics rebuilt {} after Redis lost them: {body}",
                seconds_since(fault)
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_8_a_rolling_restart_of_every_service_fails_no_request() {
    let Some(ran) = Scenario::new("8. rolling restart of every service")
        .recovery(Duration::from_secs(2))
        .strike(async |d, clients, fault| {
            for service in Service::ALL {
                // As a Deployment rolls: the new pods start and become ready, the endpoints
                // change, the old pods get SIGTERM (NOT_SERVING, drain, exit).
                let old = d.replicas(service);
                let new: Vec<String> = old.iter().map(|_| d.spawn(service)).collect();
                for name in &new {
                    d.wait_ready(name).await;
                }
                d.swap_dns(&old, &new);
                if service == Service::Gateway {
                    clients.set_gateways(d.gateways());
                }
                // Every dns:/// channel re-resolves within 5 s.
                tokio::time::sleep(Duration::from_secs(6)).await;
                for name in &old {
                    d.terminate(name).await;
                }
                eprintln!("rolled {} at {}", service.binary(), seconds_since(fault));
            }
        })
        .await
    else {
        return;
    };
    assert_eq!(
        ran.report.retried, 0,
        "a rolling restart fails no client request"
    );
}
