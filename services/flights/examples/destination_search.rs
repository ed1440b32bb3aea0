//! Destination search benchmark: fills the in-memory vector index with 1k, 10k and 100k
//! destinations (synthetic descriptions, the AI agent's offline embedder, 384 dimensions) and
//! measures the search's latency (top 5, the route's default) over a set of queries.
//!
//! `cargo run --release -p flightmesh-flights --example destination_search [-- 1000,10000,100000]`
//!
//! Prints a Markdown table (docs/benchmarks.md, "Destination search"). Times are of one search
//! on one thread: the index scan (what the flights service does per request) and the query's
//! embedding plus the scan (what a search costs end to end, minus the two gRPC hops).
#![allow(clippy::print_stdout)]

mod bench_stats;

use bench_stats::{ms, percentile, sizes_from_args};
use std::time::{Duration, Instant};

use flightmesh_ai_agent::embeddings::{OFFLINE_DIMENSIONS, OFFLINE_MODEL, offline_embedding};
use flightmesh_flights::vectors::VectorIndex;

const WORDS: &[&str] = &[
    "playa",
    "playas",
    "arena",
    "blanca",
    "buceo",
    "bucear",
    "snorkel",
    "arrecifes",
    "coral",
    "esqui",
    "nieve",
    "montana",
    "montanas",
    "nevadas",
    "pistas",
    "refugios",
    "alpinos",
    "museo",
    "museos",
    "historia",
    "colonial",
    "murallas",
    "catedral",
    "gastronomia",
    "ceviche",
    "mariscos",
    "cafe",
    "cafetales",
    "selva",
    "amazonia",
    "rio",
    "rios",
    "cascadas",
    "senderismo",
    "volcan",
    "volcanes",
    "desierto",
    "dunas",
    "estrellas",
    "vino",
    "vinedos",
    "bodegas",
    "tango",
    "salsa",
    "carnaval",
    "fiesta",
    "noche",
    "bares",
    "surf",
    "olas",
    "kitesurf",
    "viento",
    "ballenas",
    "delfines",
    "tortugas",
    "aves",
    "manglares",
    "lago",
    "lagos",
    "glaciares",
    "pinguinos",
    "termales",
    "spa",
    "relax",
    "familia",
    "ninos",
    "parque",
    "parques",
    "arqueologia",
    "ruinas",
    "incas",
    "mayas",
    "piramides",
    "artesania",
    "mercados",
    "compras",
    "ciudad",
    "moderna",
    "rascacielos",
    "arquitectura",
    "isla",
    "islas",
    "caribe",
    "pacifico",
    "andes",
    "patagonia",
    "llanos",
    "sabana",
    "safari",
    "pesca",
    "kayak",
    "rafting",
    "escalada",
    "ciclismo",
    "golf",
    "festival",
    "musica",
    "teatro",
    "cultura",
];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn text(&mut self, min: usize, max: usize) -> String {
        let count = min + self.below(max - min + 1);
        (0..count)
            .map(|_| WORDS[self.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn main() {
    let sizes = sizes_from_args();
    let queries = 500;
    println!(
        "model {OFFLINE_MODEL}, {OFFLINE_DIMENSIONS} dimensions, top 5, {queries} queries per size, one thread\n"
    );
    println!(
        "| destinations | index memory | build (embed + insert) | scan p50 | scan p99 | embed + scan p50 | embed + scan p99 | max |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &size in &sizes {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size as u64);
        let started = Instant::now();
        let mut index = VectorIndex::new(OFFLINE_MODEL, OFFLINE_DIMENSIONS);
        for id in 0..size {
            let vector = offline_embedding(&rng.text(8, 20));
            index.upsert(i64::try_from(id).unwrap_or(i64::MAX), &vector);
        }
        let build = started.elapsed();
        let texts: Vec<String> = (0..queries).map(|_| rng.text(1, 4)).collect();
        // Warm-up: page the matrix in, settle the CPU clock.
        for text in texts.iter().take(20) {
            std::hint::black_box(index.search(&offline_embedding(text), 5));
        }
        let mut scan = Vec::with_capacity(queries);
        let mut total = Vec::with_capacity(queries);
        for text in &texts {
            let started = Instant::now();
            let query = offline_embedding(text);
            let embedded = started.elapsed();
            let hits = std::hint::black_box(index.search(&query, 5));
            let elapsed = started.elapsed();
            assert!(!hits.is_empty());
            scan.push(elapsed - embedded);
            total.push(elapsed);
        }
        scan.sort_unstable();
        total.sort_unstable();
        let memory_mb = (size * OFFLINE_DIMENSIONS * 4) as f64 / 1_048_576.0;
        println!(
            "| {size} | {memory_mb:.1} MB | {:.2} s | {} ms | {} ms | {} ms | {} ms | {} ms |",
            build.as_secs_f64(),
            ms(percentile(&scan, 50.0)),
            ms(percentile(&scan, 99.0)),
            ms(percentile(&total, 50.0)),
            ms(percentile(&total, 99.0)),
            ms(*total.last().unwrap_or(&Duration::ZERO)),
        );
    }
}
