//! `loadgen`: load for flightmesh, with numbers you can compare.
//!
//! ```text
//! loadgen run --scenario bookings|reads|flow --via rest|grpc
//!             [--gateway http://127.0.0.1:8080] [--bookings http://127.0.0.1:50052] [--flights-url http://127.0.0.1:50051]
//!             [--concurrency 16 | --rate 500] [--duration 20s] [--warmup 3s]
//!             [--flights 100] [--destinations 10] [--capacity 100000] [--hot]
//!             [--connections 64] [--json]
//! ```
//! `run` first creates its own catalog through the gateway (`--flights` flights, or one with
//! `--hot`), then applies the load and prints throughput, latency percentiles and outcomes.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flightmesh_loadgen::args::Args;
use flightmesh_loadgen::client::Client;
use flightmesh_loadgen::run::{Load, Scenario, run};
use flightmesh_loadgen::setup;

#[tokio::main]
#[allow(clippy::print_stdout)]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    if command != "run" {
        eprintln!(
            "usage: loadgen run --scenario bookings|reads|flow --via rest|grpc [options] (see the source header)"
        );
        return ExitCode::from(2);
    }
    match main_run(argv.collect()).await {
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
        "rest" => Client::rest(&gateway),
        "grpc" => Client::grpc(
            &args.text("bookings", "http://127.0.0.1:50052"),
            &args.text("flights-url", "http://127.0.0.1:50051"),
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
    Ok(())
}
