//! `loadgen`: load for flightmesh, with numbers you can compare.
//!
//! ```text
//! loadgen run --scenario bookings|reads|flow|catalog --via rest|grpc
//!             [--gateway http://127.0.0.1:8080] [--bookings http://127.0.0.1:50052]
//!             [--flights-url http://127.0.0.1:50051] [--stats-url http://127.0.0.1:50053]
//!             [--concurrency 16 | --rate 500 [--max-in-flight 4096]] [--duration 20s] [--warmup 3s]
//!             [--flights 100] [--destinations 10] [--capacity 100000] [--hot]
//!             [--json] [--verify [--wait 60s]]
//! loadgen verify [--database-url postgres://postgres@127.0.0.1:5432/flightmesh]
//!                [--redis-url redis://127.0.0.1:6379] [--redis-prefix ""] [--wait 60s]
//! loadgen broker [--amqp-url amqp://guest:guest@127.0.0.1:5672/%2f] [--messages 20000]
//!                [--size 300] [--batch 500] [--prefetch 50] [--json]
//! ```
//! `run` first creates its own catalog through the gateway (`--flights` flights, or one with
//! `--hot`), then applies the load and prints throughput, latency percentiles and outcomes; with
//! `--verify` it then waits for the statistics to catch up and checks them. `verify` compares the
//! statistics in Redis with the sums computed from the bookings in PostgreSQL (exit 1 if they
//! differ after `--wait`). `broker` measures RabbitMQ alone: persistent publishes with confirms
//! (one at a time, and pipelined in batches as the outbox relay does) and consumption with acks.

/// The binary's allocator: mimalloc with the `mimalloc` feature (the default), as the services'.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flightmesh_loadgen::args::Args;
use flightmesh_loadgen::client::Client;
use flightmesh_loadgen::run::{Load, Scenario, run};
use flightmesh_loadgen::{broker, setup, verify};

#[tokio::main]
#[allow(clippy::print_stdout)]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let done = match command.as_str() {
        "run" => main_run(argv.collect()).await,
        "verify" => match Args::parse(argv) {
            Ok(args) => main_verify(&args).await,
            Err(err) => Err(err),
        },
        "broker" => match Args::parse(argv) {
            Ok(args) => main_broker(&args).await,
            Err(err) => Err(err),
        },
        _ => {
            eprintln!(
                "usage: loadgen run --scenario bookings|reads|flow|catalog --via rest|grpc [options]\n       loadgen verify [options]\n       loadgen broker [options]\n(see the source header)"
            );
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn main_run(argv: Vec<String>) -> Result<(), String> {
    let args = Args::parse(argv)?;
    let scenario: Scenario = args.text("scenario", "bookings").parse()?;
    let gateway = args.text("gateway", "http://127.0.0.1:8080");
    let duration = args.duration("duration", Duration::from_secs(20))?;
    let warmup = args.duration("warmup", Duration::from_secs(3))?;
    let load = if args.has("rate") {
        Load::Rate {
            per_second: args.get("rate", 100.0)?,
            max_in_flight: args.get("max-in-flight", 4096)?,
        }
    } else {
        Load::Concurrency(args.get("concurrency", 16)?)
    };
    let flights = if args.has("hot") {
        1
    } else {
        args.get("flights", 100)?
    };
    let tag = format!(
        "LG{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() % 1_000_000_000)
            .unwrap_or(0)
    );
    let catalog = setup::catalog(
        &gateway,
        &tag,
        args.get("destinations", 10)?,
        flights,
        args.get("capacity", 100_000)?,
    )
    .await?;

    let client = match args.text("via", "rest").as_str() {
        "rest" => Client::rest(
            &gateway,
            match load {
                Load::Concurrency(n) => n,
                Load::Rate { max_in_flight, .. } => max_in_flight,
            },
        ),
        "grpc" => Client::grpc(
            &args.text("bookings", "http://127.0.0.1:50052"),
            &args.text("flights-url", "http://127.0.0.1:50051"),
            &args.text("stats-url", "http://127.0.0.1:50053"),
        )
        .await
        .map_err(|e| format!("gRPC connect: {e}"))?,
        other => return Err(format!("--via {other}: use rest or grpc")),
    };
    if !warmup.is_zero() {
        run(
            client.clone(),
            scenario,
            catalog.clone(),
            load,
            warmup,
            true,
        )
        .await;
    }
    let summary = run(client, scenario, catalog, load, duration, args.has("json")).await;
    if args.has("json") {
        println!("{}", summary.json());
    } else {
        print!("{}", summary.text());
    }
    if args.has("verify") {
        main_verify(&args).await?;
    }
    Ok(())
}

/// RabbitMQ's own rates.
#[allow(clippy::print_stdout)]
async fn main_broker(args: &Args) -> Result<(), String> {
    let bench = broker::BrokerBench {
        url: args.text("amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        messages: args.get("messages", 20_000)?,
        size: args.get("size", 300)?,
        batch: args.get("batch", 500)?,
        prefetch: args.get("prefetch", 50)?,
    };
    let rates = broker::run(&bench)
        .await
        .map_err(|err| format!("broker: {err}"))?;
    if args.has("json") {
        println!("{}", rates.json());
    } else {
        println!(
            "RabbitMQ, {} persistent messages of {} bytes:\n  publish, confirm each:        {:>9.0} msg/s\n  publish, confirms pipelined:  {:>9.0} msg/s (batches of {})\n  consume, ack each:            {:>9.0} msg/s (prefetch {})",
            bench.messages,
            bench.size,
            rates.confirm_each,
            rates.confirm_batched,
            bench.batch,
            rates.consume_ack,
            bench.prefetch
        );
    }
    Ok(())
}

/// Redis statistics == PostgreSQL sums, or an error after `--wait`.
#[allow(clippy::print_stderr)]
async fn main_verify(args: &Args) -> Result<(), String> {
    let comparison = verify::settle(
        &args.text(
            "database-url",
            "postgres://postgres@127.0.0.1:5432/flightmesh",
        ),
        &args.text("redis-url", "redis://127.0.0.1:6379"),
        &args.text("redis-prefix", ""),
        args.duration("wait", Duration::from_secs(60))?,
    )
    .await
    .map_err(|err| err.to_string())?;
    eprint!("{comparison}");
    if comparison.agrees() {
        eprintln!("verify: the statistics in Redis equal the sums of the bookings in PostgreSQL");
        Ok(())
    } else {
        Err("the statistics in Redis differ from the bookings in PostgreSQL".to_owned())
    }
}
