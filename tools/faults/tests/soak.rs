//! A soak: the deployment shape booking at a steady rate with the full pipeline, sampled, and
//! nothing allowed to grow without bound — process memory and descriptors flat after warm-up,
//! the outbox and the idempotency keys held by their retention (short ones here, so that the
//! purges show within the run), no backlog in the queue, Redis keys and memory flat (its lists
//! capped).
//!
//! The test command runs it for 60 s and asserts loose bounds (a leak shows as a trend, noise
//! does not). The documented run (docs/reliability.md, "Soak"):
//! `SOAK_DURATION=15m SOAK_OUT=docs/soak/samples.json cargo test --release -p flightmesh-faults --test soak -- --nocapture`
//! then `python3 scripts/soak_report.py docs/soak/samples.json` (table and plot).

use std::time::{Duration, Instant};

use flightmesh_faults::soak::{Sample, slope};
use flightmesh_faults::{Bookers, Deployment, Options};

/// `30s`, `15m`, `1h`.
fn duration(var: &str, default: &str) -> Duration {
    let text = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("{var}={text}"));
    match unit {
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => panic!("{var}={text}: use s, m or h"),
    }
}

/// Retention of the outboxes and of the idempotency keys during the soak.
const OUTBOX_RETENTION: Duration = Duration::from_secs(20);
const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_steady_load_leaves_nothing_growing() {
    let length = duration("SOAK_DURATION", "60s");
    let every = duration(
        "SOAK_SAMPLE",
        if length >= Duration::from_secs(300) {
            "10s"
        } else {
            "5s"
        },
    );
    let rate: u32 = std::env::var("SOAK_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    if flightmesh_faults::deploy::can_isolate_names().is_err() {
        assert!(
            std::env::var_os("FLIGHTMESH_REQUIRE_FAULTS").is_none(),
            "the deployment shape cannot run here"
        );
        eprintln!("SKIPPED: the deployment shape cannot run here");
        return;
    }
    let secs = |d: Duration| format!("{}s", d.as_secs());
    let d = Deployment::start(
        Options::default()
            .with_env("bookings", "OUTBOX_RETENTION", &secs(OUTBOX_RETENTION))
            .with_env("flights", "OUTBOX_RETENTION", &secs(OUTBOX_RETENTION))
            .with_env(
                "bookings",
                "IDEMPOTENCY_RETENTION",
                &secs(IDEMPOTENCY_RETENTION),
            )
            .with_env("stats-worker", "LOG_LIST_CAP", "1000")
            .with_env("bookings", "RUST_LOG", "warn")
            .with_env("flights", "RUST_LOG", "warn")
            .with_env("gateway", "RUST_LOG", "warn")
            .with_env("stats-worker", "RUST_LOG", "warn"),
    )
    .await;
    let flights = d.catalog().await;
    let started = Instant::now();
    let clients = Bookers::start(d.gateways(), flights, rate);
    let mut samples: Vec<Sample> = Vec::new();
    while started.elapsed() < length {
        tokio::time::sleep(every).await;
        let sample = d.sample(started).await;
        eprintln!(
            "t={:>5.0}s rss(MiB) {} · outbox {} · keys {} · queue {} · redis {:.1} MiB / {} keys",
            sample.t,
            sample
                .rss_kib
                .iter()
                .map(|(name, kib)| format!("{name}={:.1}", *kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" "),
            sample.rows["bookings.outbox"],
            sample.rows["bookings.idempotency_keys"],
            sample.queue_depth,
            sample.redis_memory as f64 / 1_048_576.0,
            sample.redis_keys,
        );
        samples.push(sample);
    }
    let report = clients.stop().await;
    let booked = report.acknowledged().len();
    eprintln!(
        "soak: {booked} bookings in {:.0} s ({} retried attempts, {} failed)",
        started.elapsed().as_secs_f64(),
        report.retried,
        report.gave_up
    );
    if let Ok(path) = std::env::var("SOAK_OUT") {
        let out = serde_json::json!({
            "rate": rate, "duration_s": length.as_secs(), "bookings": booked,
            "outbox_retention_s": OUTBOX_RETENTION.as_secs(),
            "idempotency_retention_s": IDEMPOTENCY_RETENTION.as_secs(),
            "samples": samples.iter().map(Sample::json).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).expect("SOAK_OUT");
        eprintln!("samples written to {path}");
    }

    // Warm-up: the first third (pools filling, caches, allocator arenas, the first purges).
    let steady = &samples[samples.len() / 3..];
    assert!(
        steady.len() >= 3,
        "too short a soak to judge: {}",
        samples.len()
    );
    let per_minute = |series: Vec<(f64, f64)>| slope(&series) * 60.0;
    let mut broken = Vec::new();
    for name in steady[0].rss_kib.keys() {
        let rss = per_minute(
            steady
                .iter()
                .map(|s| (s.t, s.rss_kib.get(name).copied().unwrap_or(0) as f64))
                .collect(),
        );
        // A leak of 100 bytes per booking at 100/s is 586 KiB a minute. Over a long run noise
        // averages out far below that; over a minute one allocator step (a new arena page)
        // weighs much more, so the short run only catches gross leaks.
        let bound = if length >= Duration::from_secs(300) {
            512.0
        } else {
            4096.0
        };
        if rss > bound {
            broken.push(format!("{name}: RSS grows {rss:.0} KiB/min"));
        }
        let first = steady[0].fds.get(name).copied().unwrap_or(0);
        let last = steady[steady.len() - 1].fds.get(name).copied().unwrap_or(0);
        if last > first + 16 {
            broken.push(format!("{name}: descriptors {first} -> {last}"));
        }
    }
    // Tables held by retention: the rate times 1.25 retention (a purge every quarter of it),
    // and slack for the purge's pace.
    let bound =
        |retention: Duration| (f64::from(rate) * (retention.as_secs_f64() * 1.25 + 10.0)) as i64;
    for s in steady {
        if s.rows["bookings.outbox"] > bound(OUTBOX_RETENTION) {
            broken.push(format!(
                "t={:.0}: outbox {} rows",
                s.t, s.rows["bookings.outbox"]
            ));
        }
        if s.rows["bookings.idempotency_keys"] > bound(IDEMPOTENCY_RETENTION) {
            broken.push(format!(
                "t={:.0}: idempotency keys {} rows",
                s.t, s.rows["bookings.idempotency_keys"]
            ));
        }
        if s.queue_depth > rate * 5 {
            broken.push(format!("t={:.0}: {} events queued", s.t, s.queue_depth));
        }
    }
    let keys = per_minute(steady.iter().map(|s| (s.t, s.redis_keys as f64)).collect());
    if keys > 10.0 {
        broken.push(format!("Redis keys grow {keys:.0}/min"));
    }
    // The applied-fact bitmaps grow one bit per booking: 750 bytes a minute at 100/s.
    let memory = per_minute(
        steady
            .iter()
            .map(|s| (s.t, s.redis_memory as f64 / 1024.0))
            .collect(),
    );
    if memory > 256.0 {
        broken.push(format!("Redis memory grows {memory:.0} KiB/min"));
    }
    assert!(report.gave_up == 0 && report.internal_errors.is_empty());
    assert!(broken.is_empty(), "growth: {broken:#?}");
}
