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
//!                [--size 300] [--batch 500] [--prefetch 50] [--ack-batch 1] [--pipelined-only]
//!                [--json]
//! ```
//! `run` first creates its own catalog through the gateway (`--flights` flights, or one with
//! `--hot`), then applies the load and prints throughput, latency percentiles and outcomes; with
//! `--verify` it then waits for the statistics to catch up and checks them. `verify` compares the
//! statistics in Redis with the sums computed from the bookings in PostgreSQL (exit 1 if they
//! differ after `--wait`). `broker` measures RabbitMQ alone: persistent publishes with confirms
//! (one at a time, and pipelined in batches as the outbox relay does) and consumption with acks
//! (one per delivery, or per `--ack-batch` as the stats worker does); `--pipelined-only` skips the
//! one-at-a-time phase, so the broker's CPU over the run is its cost per event in the pipeline.

/// The binary's allocator: mimalloc with the `mimalloc` feature (the default), as the services'.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, ValueEnum};
use flightmesh_loadgen::client::Client;
use flightmesh_loadgen::run::{Load, Scenario, run};
use flightmesh_loadgen::{broker, setup, verify};
use flightmesh_runtime::config::Dur;

/// Load for flightmesh, with numbers you can compare.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
enum Cli {
    /// Create a catalog through the gateway, apply the load, print throughput, latency and outcomes
    Run(RunArgs),
    /// Compare the statistics in Redis with the sums of the bookings in PostgreSQL (exit 1 if they differ)
    Verify(VerifyArgs),
    /// Measure RabbitMQ alone: persistent publishes with confirms, consumption with acks
    Broker(BrokerArgs),
}

/// How `run` reaches the mesh.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Via {
    Rest,
    Grpc,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// bookings, reads, flow or catalog
    #[arg(long, default_value = "bookings")]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "rest")]
    via: Via,
    /// The gateway (the catalog is always created through it)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    bookings: String,
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    flights_url: String,
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    stats_url: String,
    /// Workers, each sending its next call when the last one answered
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Calls per second whatever the answers (open loop), instead of --concurrency
    #[arg(long)]
    rate: Option<f64>,
    /// With --rate: the most calls outstanding
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    #[arg(long, default_value = "20s")]
    duration: Dur,
    #[arg(long, default_value = "3s")]
    warmup: Dur,
    /// Flights in the catalog created for the run
    #[arg(long, default_value_t = 100)]
    flights: usize,
    #[arg(long, default_value_t = 10)]
    destinations: usize,
    /// Seats of each flight
    #[arg(long, default_value_t = 100_000)]
    capacity: i32,
    /// One flight for every call (contention on one seat ledger row)
    #[arg(long)]
    hot: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// Then wait for the statistics to catch up and check them (as `verify`)
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    verify_args: VerifyArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/flightmesh")]
    database_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The stats worker's REDIS_KEY_PREFIX
    #[arg(long, default_value = "")]
    redis_prefix: String,
    /// How long the statistics may take to catch up
    #[arg(long, default_value = "60s")]
    wait: Dur,
}

#[derive(Debug, Args)]
struct BrokerArgs {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Bytes per message
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Publishes per pipelined batch of confirms
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, default_value_t = 50)]
    prefetch: u16,
    /// Deliveries per ack: one `multiple` ack for each batch (1: an ack per delivery)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    ack_batch: u16,
    /// Only the pipeline's pattern: pipelined confirms, then consumption (no one-at-a-time phase)
    #[arg(long)]
    pipelined_only: bool,
    /// Print the rates as JSON
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The services' runtime for `TOKIO_WORKER_THREADS` (bench/run.py runs every load with 1).
    let threads = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|threads| threads.parse::<usize>().ok())
        .filter(|&threads| threads > 0);
    let mut runtime = flightmesh_runtime::cli::runtime_builder(threads);
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loadgen: no runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let done = runtime.block_on(async {
        match cli {
            Cli::Run(args) => main_run(args).await,
            Cli::Verify(args) => main_verify(&args).await,
            Cli::Broker(args) => main_broker(&args).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn main_run(args: RunArgs) -> Result<(), String> {
    let load = match args.rate {
        Some(per_second) => Load::Rate {
            per_second,
            max_in_flight: args.max_in_flight,
        },
        None => Load::Concurrency(args.concurrency),
    };
    let flights = if args.hot { 1 } else { args.flights };
    let tag = format!(
        "LG{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() % 1_000_000_000)
            .unwrap_or(0)
    );
    let catalog = setup::catalog(
        &args.gateway,
        &tag,
        args.destinations,
        flights,
        args.capacity,
    )
    .await?;

    let client = match args.via {
        Via::Rest => Client::rest(
            &args.gateway,
            match load {
                Load::Concurrency(n) => n,
                Load::Rate { max_in_flight, .. } => max_in_flight,
            },
        ),
        Via::Grpc => Client::grpc(&args.bookings, &args.flights_url, &args.stats_url)
            .await
            .map_err(|e| format!("gRPC connect: {e}"))?,
    };
    let warmup: Duration = args.warmup.0;
    if !warmup.is_zero() {
        run(
            client.clone(),
            args.scenario,
            catalog.clone(),
            load,
            warmup,
            true,
        )
        .await;
    }
    let summary = run(
        client,
        args.scenario,
        catalog,
        load,
        args.duration.0,
        args.json,
    )
    .await;
    if args.json {
        println!("{}", summary.json());
    } else {
        print!("{}", summary.text());
    }
    if args.verify {
        main_verify(&args.verify_args).await?;
    }
    Ok(())
}

/// RabbitMQ's own rates.
#[allow(clippy::print_stdout)]
async fn main_broker(args: &BrokerArgs) -> Result<(), String> {
    let bench = broker::BrokerBench {
        url: args.amqp_url.clone(),
        messages: args.messages,
        size: args.size,
        batch: args.batch,
        prefetch: args.prefetch,
        ack_batch: usize::from(args.ack_batch),
        pipelined_only: args.pipelined_only,
    };
    let rates = broker::run(&bench)
        .await
        .map_err(|err| format!("broker: {err}"))?;
    if args.json {
        println!("{}", rates.json());
    } else {
        println!(
            "RabbitMQ, {} persistent messages of {} bytes:",
            bench.messages, bench.size
        );
        if let Some(each) = rates.confirm_each {
            println!("  publish, confirm each:        {each:>9.0} msg/s");
        }
        println!(
            "  publish, confirms pipelined:  {:>9.0} msg/s (batches of {})\n  consume and ack:              {:>9.0} msg/s (prefetch {}, an ack per {} deliveries)",
            rates.confirm_batched, bench.batch, rates.consume_ack, bench.prefetch, bench.ack_batch
        );
    }
    Ok(())
}

/// Redis statistics == PostgreSQL sums, or an error after `--wait`.
#[allow(clippy::print_stderr)]
async fn main_verify(args: &VerifyArgs) -> Result<(), String> {
    let comparison = verify::settle(
        &args.database_url,
        &args.redis_url,
        &args.redis_prefix,
        args.wait.0,
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
