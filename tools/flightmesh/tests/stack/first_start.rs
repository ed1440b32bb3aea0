//! A first start as a new user makes it — `flightmesh up --demo` on a fresh database, exchanges,
//! queue and Redis prefix — logs no warning and no error: a new user's first screen is clean.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::{AMQP_URL, Isolation, REDIS_URL, cleanup};
use flightmesh_testkit::TestDatabase;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_start_with_the_demo_catalog_logs_no_warning() {
    let db = TestDatabase::create().await;
    let names = Isolation::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightmesh"));
    command
        .args(["up", "--demo"])
        .env("DATABASE_URL", db.url())
        .env("AMQP_URL", AMQP_URL)
        .env("REDIS_URL", REDIS_URL)
        .env("BOOKINGS_EXCHANGE", &names.exchange)
        .env("CATALOG_EXCHANGE", &names.catalog_exchange)
        .env("STATS_QUEUE", &names.stats_queue)
        .env("REDIS_KEY_PREFIX", &names.redis_prefix)
        // Ports the kernel picks as each one binds: a port found free and then released could be
        // taken by a parallel test before this process binds it.
        .env("GATEWAY_HTTP_ADDR", "127.0.0.1:0")
        .env("GATEWAY_ADMIN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("GROQ_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for service in ["FLIGHTS", "BOOKINGS", "STATS", "AI"] {
        command
            .env(format!("{service}_GRPC_ADDR"), "127.0.0.1:0")
            .env(format!("{service}_ADMIN_ADDR"), "127.0.0.1:0");
    }
    let mut child = command.spawn().expect("flightmesh up starts");
    let (lines, received) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);

    // The demo catalog is loaded, and every catalog event has reached the broker (the relay
    // retries the ones published before the stats worker declared its queue).
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !log
        .iter()
        .any(|l: &String| l.contains("demo catalog loaded"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!("no demo catalog within 90 s:\n{}", log.join("\n")),
        }
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM flights.outbox WHERE published_at IS NULL",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if pending.n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} catalog events never published",
            pending.n
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(conn);

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let status = child.wait().expect("flightmesh up exits");
    log.extend(received.iter());
    cleanup(names);
    assert!(status.success(), "exit {status}:\n{}", log.join("\n"));
    let noisy: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
        .collect();
    assert!(noisy.is_empty(), "a first start warned:\n{noisy:#?}");
    assert!(
        log.iter().any(|l| l.contains(r#""level":"INFO""#)),
        "the log was read (JSON, INFO and up)"
    );
}
