//! Destination search end to end over gRPC: a flights service on a fresh database holding N
//! destinations with 384-dimension vectors (bulk-inserted in SQL), searched through
//! `SearchDestinationEmbeddings` by a client on the same machine: the index scan, the lookup of the
//! hits' rows and the gRPC round trip. Needs the local PostgreSQL (as the tests do).
//!
//! `cargo run --release -p flightmesh-flights --example destination_search_grpc [-- 1000,10000,100000]`
#![allow(clippy::print_stdout)]

mod bench_stats;

use bench_stats::{ms, percentile, sizes_from_args};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_proto::flights::SearchDestinationEmbeddingsRequest;
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_runtime::Env;

const DIMENSIONS: usize = 384;
const QUERIES: usize = 300;

/// A pseudo-random unit vector (xorshift), different per `seed`.
fn query(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut vector: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss)]
            let unit = (state >> 11) as f32 / (1u64 << 53) as f32;
            unit - 0.5
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    for x in &mut vector {
        *x /= norm;
    }
    vector
}

/// A flights service alone on `database_url`: ephemeral ports, migrated by the script before
/// it seeds, no relay (nothing consumes the catalog's events here), no drain on stop.
fn lone_service(database_url: &str) -> Env {
    Env::from_pairs([
        ("DATABASE_URL", database_url),
        ("GRPC_ADDR", "127.0.0.1:0"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("OUTBOX_RELAY", "false"),
        ("MIGRATE_ON_START", "false"),
        ("DRAIN_DELAY", "0s"),
        ("LOG_FORMAT", "text"),
    ])
}

// One straight script (seed, embed, search, print), read top to bottom: its length is the
// walkthrough, not logic to split.
#[tokio::main]
async fn main() -> Result<(), flightmesh_runtime::BoxError> {
    let sizes = sizes_from_args();
    println!("{DIMENSIONS} dimensions, top 5, {QUERIES} sequential queries per size\n");
    println!("| destinations | first search (index load) | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|");
    for &size in &sizes {
        let db = flightmesh_testkit::TestDatabase::create().await;
        let config = flightmesh_flights::Config::from_env(&lone_service(db.url()))?;
        flightmesh_flights::migrate(&config.db).await?;
        let mut conn = AsyncPgConnection::establish(db.url()).await?;
        diesel::sql_query(format!(
            "INSERT INTO flights.destinations (name, tax_amount, description) \
             SELECT 'Destino ' || g, 10, 'descripcion ' || g FROM generate_series(1, {size}) g"
        ))
        .execute(&mut conn)
        .await?;
        // Random components per row (the correlated `d.id` keeps Postgres from computing the
        // array once); unit length does not matter for timing.
        diesel::sql_query(format!(
            "INSERT INTO flights.destination_embeddings (destination_id, model, dimensions, vector) \
             SELECT d.id, 'bench', {DIMENSIONS}, \
                    ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, {DIMENSIONS}) WHERE d.id > 0) \
             FROM flights.destinations d"
        ))
        .execute(&mut conn)
        .await?;
        drop(conn);

        let service = flightmesh_flights::build(config).await?;
        let addr = service.grpc_addr();
        let shutdown = flightmesh_runtime::CancellationToken::new();
        let running = tokio::spawn(service.run(shutdown.clone()));
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let mut client = FlightServiceClient::new(channel);
        let search = |seed| SearchDestinationEmbeddingsRequest {
            model: "bench".into(),
            vector: query(seed),
            limit: Some(5),
        };

        let started = Instant::now();
        let first = client
            .search_destination_embeddings(search(0))
            .await?
            .into_inner();
        let load = started.elapsed();
        assert_eq!(first.matches.len(), 5.min(size));
        for seed in 1..=20 {
            client.search_destination_embeddings(search(seed)).await?;
        }
        let mut times = Vec::with_capacity(QUERIES);
        for seed in 0..QUERIES {
            let started = Instant::now();
            client
                .search_destination_embeddings(search(1000 + seed as u64))
                .await?;
            times.push(started.elapsed());
        }
        times.sort_unstable();
        println!(
            "| {size} | {} ms | {} ms | {} ms | {} ms |",
            ms(load),
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
        shutdown.cancel();
        running.await??;
    }
    Ok(())
}
