//! Running a scenario: closed loop (N workers, each waiting for its answer) or open loop (a fixed
//! arrival rate whatever the answers, latency measured from the *intended* start so a stall is
//! not hidden — no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{Client, Outcome};
use crate::report::{Recorder, Summary};
use crate::setup::FlightInfo;

/// What the calls are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bookings only.
    Bookings,
    /// Reads only: flights and bookings lists, single flights.
    Reads,
    /// The old system's flow: mostly bookings (pets, infants, adults), some reads of the catalog,
    /// the bookings and the statistics.
    Flow,
    /// The catalog's front page only: `GET /api/v1/flights/` (the overload test's read).
    Catalog,
}

impl std::str::FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bookings" => Ok(Self::Bookings),
            "reads" => Ok(Self::Reads),
            "flow" => Ok(Self::Flow),
            "catalog" => Ok(Self::Catalog),
            other => Err(format!(
                "unknown scenario {other:?} (bookings, reads, flow, catalog)"
            )),
        }
    }
}

/// How load is applied.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// This many workers, each sending its next call when the last one answered.
    Concurrency(usize),
    /// This many calls per second, whatever the answers (at most `max_in_flight` outstanding).
    Rate {
        /// Calls per second.
        per_second: f64,
        /// Cap on outstanding calls.
        max_in_flight: usize,
    },
}

/// Counters the progress line reads while the run goes.
#[derive(Default)]
struct Live {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// One call of `scenario`, number `n`.
async fn call(client: &Client, scenario: Scenario, flights: &[FlightInfo], n: u64) -> Outcome {
    #[allow(clippy::cast_possible_truncation)]
    let flight = flights[(n % flights.len() as u64) as usize];
    let passenger = format!("Pasajero {n}");
    match scenario {
        Scenario::Bookings => client.book(flight.id, &passenger, 30, false).await,
        Scenario::Reads => client.read(n, flight.id).await,
        Scenario::Catalog => client.read_catalog().await,
        Scenario::Flow => match n % 10 {
            0 | 1 => client.read(n / 10, flight.id).await,
            2 => client.read_stats(n / 10).await,
            // Pets only where the destination takes them (the old clients check first).
            3 => {
                client
                    .book(flight.id, &passenger, 35, flight.allows_pets)
                    .await
            }
            4 | 5 => {
                client
                    .book(
                        flight.id,
                        &passenger,
                        i32::try_from(n % 12).unwrap_or(5),
                        false,
                    )
                    .await
            }
            _ => {
                client
                    .book(
                        flight.id,
                        &passenger,
                        18 + i32::try_from(n % 60).unwrap_or(0),
                        false,
                    )
                    .await
            }
        },
    }
}

/// What every call task of a run needs, cloned into each.
#[derive(Clone)]
struct Shared {
    client: Client,
    scenario: Scenario,
    flights: Arc<[FlightInfo]>,
    live: Arc<Live>,
}

impl Shared {
    /// Call number `n` of the scenario, counted in the progress line's figures.
    async fn call(&self, n: u64) -> Outcome {
        let outcome = call(&self.client, self.scenario, &self.flights, n).await;
        count(&self.live, outcome.ok);
        outcome
    }
}

/// Runs `scenario` for `duration`, printing a progress line each second unless `quiet`.
pub async fn run(
    client: Client,
    scenario: Scenario,
    flights: Vec<FlightInfo>,
    load: Load,
    duration: Duration,
    quiet: bool,
) -> Summary {
    assert!(!flights.is_empty(), "a run needs at least one flight");
    let flights: Arc<[FlightInfo]> = flights.into();
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let deadline = started + duration;
    let progress = (!quiet).then(|| tokio::spawn(progress(live.clone(), started)));
    let shared = Shared {
        client,
        scenario,
        flights,
        live,
    };

    let recorders: Vec<Recorder> = match load {
        Load::Concurrency(workers) => closed_loop(&shared, workers, deadline).await,
        Load::Rate {
            per_second,
            max_in_flight,
        } => vec![open_loop(&shared, per_second, max_in_flight, started, deadline).await],
    };
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    let mut total = Recorder::default();
    for recorder in &recorders {
        total.merge(recorder);
    }
    Summary::new(&total, elapsed)
}

/// Closed loop: `workers` tasks each sending its next call when the last one answered, until
/// `deadline`; one recorder per worker.
async fn closed_loop(shared: &Shared, workers: usize, deadline: Instant) -> Vec<Recorder> {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let shared = shared.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let begun = Instant::now();
                    let outcome = shared.call(n).await;
                    recorder.record(&outcome.label, outcome.ok, begun.elapsed());
                    // A closed-loop client does as the contract asks: a 503 with
                    // Retry-After is retried after that, not at once.
                    if let Some(wait) = outcome.retry_after {
                        let left = deadline.saturating_duration_since(Instant::now());
                        tokio::time::sleep(wait.min(left)).await;
                    }
                }
                recorder
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap_or_default());
    }
    out
}

/// Open loop: `per_second` calls a second from `started` until `deadline` whatever the answers
/// (at most `max_in_flight` outstanding), latency from each call's intended start.
async fn open_loop(
    shared: &Shared,
    per_second: f64,
    max_in_flight: usize,
    started: Instant,
    deadline: Instant,
) -> Recorder {
    let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, bool, Duration)>();
    let mut n: u64 = 0;
    loop {
        #[allow(clippy::cast_precision_loss)]
        let intended = started + interval.mul_f64(n as f64);
        if intended >= deadline {
            break;
        }
        tokio::time::sleep_until(intended.into()).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let Outcome { label, ok, .. } = shared.call(n).await;
            // From the intended start: time spent queued behind a stall counts.
            let _ = tx.send((label, ok, intended.elapsed()));
            drop(slot);
        });
        n += 1;
    }
    drop(tx);
    let mut recorder = Recorder::default();
    while let Some((label, ok, latency)) = rx.recv().await {
        recorder.record(&label, ok, latency);
    }
    recorder
}

fn count(live: &Live, ok: bool) {
    if ok {
        live.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        live.failed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn progress(live: Arc<Live>, started: Instant) {
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ok = live.ok.load(Ordering::Relaxed);
        eprintln!(
            "  t={:>3.0}s ok={ok} ({}/s) failed={}",
            started.elapsed().as_secs_f64(),
            ok - last,
            live.failed.load(Ordering::Relaxed)
        );
        last = ok;
    }
}
