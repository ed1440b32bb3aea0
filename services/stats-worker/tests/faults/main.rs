//! Fault injection: while clients book at a steady rate, one part of the system fails — the stats
//! worker is killed with SIGKILL, RabbitMQ is unreachable for 20 s, every PostgreSQL backend is
//! terminated, the statistics are deleted from Redis — and comes back. After each:
//!
//! - every booking a client was told succeeded exists, once (lost = 0, duplicates = 0);
//! - every booking event was applied exactly once: the statistics in Redis equal the sums of the
//!   bookings in PostgreSQL (`flightmesh_loadgen::verify`);
//! - no flight is oversold;
//! - the services recovered by themselves (bookings succeed again after the fault, the gateway is
//!   ready), without a restart — except the worker that was killed.
//!
//! Clients behave as the contract asks: each booking carries an `Idempotency-Key` and is retried
//! with it after a 5xx or a transport error, so a booking committed before its answer was lost is
//! answered again, not made twice.

// The counts each scenario prints are its report (`cargo test --test faults -- --nocapture`).
#![allow(clippy::print_stdout)]

mod booker;

use std::process::Stdio;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use flightmesh::testing::{AMQP_URL, REDIS_URL, TestMesh};
use flightmesh_testkit::TcpProxy;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::time::sleep;

use booker::{Booker, Report};

/// Creates the catalog and books on it `per_second` times a second; returns after 2 s of that
/// load, so the fault strikes a mesh that is busy.
async fn book_under_load(mesh: &TestMesh, per_second: f64) -> Booker {
    let booker = Booker::start(&mesh.base, catalog(mesh).await, per_second);
    sleep(Duration::from_secs(2)).await;
    booker
}

/// Three flights: one on promotion that takes pets, one that does not, and a small one that sells
/// out during the run (so sold-out answers and the seat ledger are exercised too).
async fn catalog(mesh: &TestMesh) -> Vec<booker::Flight> {
    let sun = mesh.destination("Cartagena", 50.0, true, true).await;
    let cold = mesh.destination("Oslo", 80.0, false, false).await;
    vec![
        booker::Flight {
            id: mesh.flight("CT-1", 1000.0, sun, 100_000).await,
            pets: true,
        },
        booker::Flight {
            id: mesh.flight("OS-1", 700.0, cold, 100_000).await,
            pets: false,
        },
        booker::Flight {
            id: mesh.flight("CT-SMALL", 300.0, sun, 25).await,
            pets: true,
        },
    ]
}

use flightmesh_testkit::count;

/// Checks everything the module promises and prints the counts.
async fn check(scenario: &str, mesh: &TestMesh, report: &Report) {
    let comparison = flightmesh_loadgen::verify::settle(
        mesh.db.url(),
        REDIS_URL,
        &mesh.names.redis_prefix,
        Duration::from_secs(90),
    )
    .await
    .expect("both sides readable");

    let mut conn = AsyncPgConnection::establish(mesh.db.url())
        .await
        .expect("PostgreSQL");
    let acked_ids = report.acked_ids();
    let acknowledged = i64::try_from(acked_ids.len()).unwrap();
    let id_list = acked_ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let found = if acked_ids.is_empty() {
        0
    } else {
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM bookings.bookings WHERE id IN ({id_list})"),
        )
        .await
    };
    let in_database = count(&mut conn, "SELECT count(*) AS n FROM bookings.bookings").await;
    let oversold = count(
        &mut conn,
        "SELECT count(*) AS n FROM bookings.flight_seats s
         WHERE s.seats_taken > s.capacity
            OR s.seats_taken <> (SELECT count(*) FROM bookings.bookings b
                                 WHERE b.flight_id = s.flight_id AND b.status = 'confirmed')",
    )
    .await;
    let lost = acknowledged - found;
    // Bookings nobody was told about: a create retried without its key would leave one.
    let duplicates = in_database - found;
    println!(
        "faults[{scenario}]: acknowledged={acknowledged} found={found} events_applied={}+{} \
         (created+cancelled) duplicates={duplicates} lost={lost} oversold={oversold} \
         sold_out={} retries={} cancelled={} acked_after_fault={}\n{comparison}",
        comparison.redis.created,
        comparison.redis.cancelled,
        report.outcome("409"),
        report.retries(),
        report.cancelled(),
        report.acked_after_fault(),
    );
    assert!(acknowledged > 0, "{scenario}: no booking succeeded at all");
    assert_eq!((lost, duplicates, oversold), (0, 0, 0), "{scenario}");
    assert!(
        comparison.agrees(),
        "{scenario}: Redis differs from PostgreSQL\n{comparison}"
    );
    assert_eq!(
        comparison.redis.created, in_database,
        "{scenario}: one booking.created each"
    );
    assert!(
        report.acked_after_fault() > 0,
        "{scenario}: bookings did not succeed again after the fault"
    );
    assert_eq!(
        report.unexpected(),
        Vec::<String>::new(),
        "{scenario}: answers outside the contract"
    );
    let (status, body) = mesh.get("/readyz").await;
    assert_eq!(status, 200, "{scenario}: the mesh recovered: {body}");
}

/// A stats worker process (the real binary) consuming this mesh's events.
fn spawn_worker(mesh: &TestMesh) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stats-worker"))
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("DRAIN_DELAY", "0s")
        .env("REDIS_URL", REDIS_URL)
        .env("REDIS_KEY_PREFIX", &mesh.names.redis_prefix)
        .env("AMQP_URL", AMQP_URL)
        .env("BOOKINGS_EXCHANGE", &mesh.names.exchange)
        .env("CATALOG_EXCHANGE", &mesh.names.catalog_exchange)
        .env("STATS_QUEUE", &mesh.names.stats_queue)
        .env("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights))
        .env("BOOKINGS_URL", format!("http://{}", mesh.addrs.bookings))
        // Several events in flight when it dies: they come back redelivered.
        .env("PREFETCH", "20")
        .env("RETRY_BASE_DELAY", "50ms")
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the stats-worker binary starts")
}

/// Runs `scenario` on `mesh`: books under load (`per_second`), strikes with `fault`, lets the
/// mesh recover for 3 s, checks, and stops the mesh. Returns what `fault` returned (a process it
/// left running).
async fn under_fault<T>(
    scenario: &str,
    mesh: TestMesh,
    per_second: f64,
    fault: impl AsyncFnOnce(&TestMesh, &Booker) -> T,
) -> T {
    let booker = book_under_load(&mesh, per_second).await;
    let left = fault(&mesh, &booker).await;
    booker.fault_over();
    sleep(Duration::from_secs(3)).await;

    let report = booker.stop().await;
    check(scenario, &mesh, &report).await;
    mesh.stop().await;
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stats_worker_killed_mid_stream_and_restarted() {
    // The mesh's own consumer is off: the worker is a separate process that can be killed.
    let mesh = TestMesh::start_with(|env, _| env.set("STATS_CONSUMER", "false")).await;
    let mut worker = spawn_worker(&mesh);
    let mut restarted = under_fault("kill-stats-worker", mesh, 60.0, async |mesh, _| {
        worker.start_kill().expect("SIGKILL");
        let status = worker.wait().await.expect("the worker exits");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed, not stopped"
        );
        sleep(Duration::from_secs(1)).await;
        spawn_worker(mesh)
    })
    .await;
    restarted.start_kill().expect("SIGKILL");
}

#[tokio::test(flavor = "multi_thread")]
async fn rabbitmq_unreachable_for_twenty_seconds() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let through_proxy = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let mesh = TestMesh::start_with(move |env, _| env.set("AMQP_URL", through_proxy)).await;
    under_fault("broker-cut-20s", mesh, 40.0, async |_, booker| {
        proxy.cut();
        let before_cut = booker.acked();
        sleep(Duration::from_secs(20)).await;
        let during_cut = booker.acked() - before_cut;
        proxy.restore();
        println!(
            "faults[broker-cut]: bookings acknowledged while RabbitMQ was unreachable: {during_cut}"
        );
        assert!(
            during_cut > 100,
            "bookings do not wait for the broker ({during_cut} in 20 s)"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_postgresql_backend_terminated() {
    let mesh = TestMesh::start().await;
    under_fault("pg-terminate-backends", mesh, 60.0, async |mesh, _| {
        let first = mesh.db.terminate_backends().await;
        sleep(Duration::from_millis(1500)).await;
        let second = mesh.db.terminate_backends().await;
        println!("faults[pg-terminate]: backends terminated: {first} then {second}");
        assert!(first > 0 && second > 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_deleted_from_redis_then_rebuilt_under_load() {
    let mesh = TestMesh::start().await;
    under_fault("redis-loss-and-rebuild", mesh, 60.0, async |mesh, _| {
        let deleted = mesh.forget_statistics().await;
        println!("faults[redis-loss]: deleted {deleted} keys");
        assert!(deleted > 0);
        sleep(Duration::from_secs(1)).await;

        // The rebuild runs while bookings keep coming and the consumer keeps applying them.
        let (status, rebuilt) = mesh.post("/api/v1/stats/rebuild", &json!({})).await;
        assert_eq!(status, 200, "{rebuilt}");
        println!("faults[redis-loss]: rebuild {rebuilt}");
    })
    .await;
}
