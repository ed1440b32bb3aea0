//! Clients that book the way the contract asks: an `Idempotency-Key` per booking, a 5xx or a
//! transport error retried with the same key on the other gateway, at a steady open-loop rate.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one booking keeps being retried before the client gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);
/// Pause between attempts of one booking.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One booking the clients made (or tried to).
#[derive(Debug, Clone)]
pub struct Booking {
    /// Unique per booking: how duplicates are found in PostgreSQL.
    pub passenger: String,
    /// When the first attempt started.
    pub started: Instant,
    /// The booking id the API answered, when it did.
    pub id: Option<i64>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<Instant>,
}

/// What the clients saw.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// Every booking, acknowledged or not.
    pub bookings: Vec<Booking>,
    /// Answered 409: the flight was full (an answer, not a failure).
    pub sold_out: u64,
    /// Attempts answered 502/503/504 or lost in transport, and retried.
    pub retried: u64,
    /// When each retried attempt failed.
    pub failures: Vec<Instant>,
    /// Answers 500: never acceptable (a reset must come back as a retryable 503).
    pub internal_errors: Vec<String>,
    /// Other 4xx answers: a client mistake the harness never makes, so a bug.
    pub client_errors: Vec<String>,
    /// Bookings still not answered after [`GIVE_UP_AFTER`].
    pub gave_up: u64,
}

impl ClientReport {
    /// Bookings the API acknowledged.
    #[must_use]
    pub fn acknowledged(&self) -> Vec<&Booking> {
        self.bookings.iter().filter(|b| b.id.is_some()).collect()
    }

    /// From `fault` until bookings succeed again at the first attempt: the time of the last
    /// failed attempt after it (zero when nothing failed).
    #[must_use]
    pub fn recovery_after(&self, fault: Instant) -> Duration {
        self.failures
            .iter()
            .filter(|f| **f >= fault)
            .max()
            .map_or(Duration::ZERO, |last| *last - fault)
    }

    /// The longest any acknowledged booking that started after `fault` waited for its answer.
    #[must_use]
    pub fn longest_wait_after(&self, fault: Instant) -> Duration {
        self.bookings
            .iter()
            .filter(|b| b.started >= fault)
            .filter_map(|b| b.acknowledged_at.map(|at| at - b.started))
            .max()
            .unwrap_or_default()
    }
}

/// Booking clients running in the background.
pub struct Bookers {
    gateways: Arc<RwLock<Vec<String>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<ClientReport>,
}

impl Bookers {
    /// Books `per_second` times a second over `flights` (round robin), through `gateways`.
    #[must_use]
    pub fn start(gateways: Vec<String>, flights: Vec<i64>, per_second: u32) -> Self {
        let gateways = Arc::new(RwLock::new(gateways));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(gateways.clone(), flights, per_second, stop.clone()));
        Self {
            gateways,
            stop,
            task,
        }
    }

    /// Replaces the gateways new attempts go to (a Service's endpoints changing).
    pub fn set_gateways(&self, gateways: Vec<String>) {
        *self.gateways.write().expect("never poisoned") = gateways;
    }

    /// Stops starting bookings, waits for the ones under way, and reports.
    pub async fn stop(self) -> ClientReport {
        self.stop.cancel();
        self.task.await.expect("the clients do not panic")
    }
}

async fn run(
    gateways: Arc<RwLock<Vec<String>>>,
    flights: Vec<i64>,
    per_second: u32,
    stop: CancellationToken,
) -> ClientReport {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let report = Arc::new(Mutex::new(ClientReport::default()));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    let mut under_way = JoinSet::new();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut n: usize = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let flight = flights[n % flights.len()];
        let passenger = format!("F{}-{n}", &run_id[..8]);
        n += 1;
        under_way.spawn(book(
            http.clone(),
            gateways.clone(),
            flight,
            passenger,
            n,
            report.clone(),
        ));
    }
    while under_way.join_next().await.is_some() {}
    report.lock().expect("never poisoned").clone()
}

/// One booking, retried with its key until it is answered.
async fn book(
    http: reqwest::Client,
    gateways: Arc<RwLock<Vec<String>>>,
    flight_id: i64,
    passenger: String,
    n: usize,
    report: Arc<Mutex<ClientReport>>,
) {
    let key = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let body = json!({
        "passenger_name": passenger,
        "passenger_age": i64::try_from(n % 70).unwrap_or(30) + 1,
        "flight_id": flight_id,
        "has_pet": false,
    });
    let mut booking = Booking {
        passenger,
        started,
        id: None,
        acknowledged_at: None,
    };
    for attempt in 0usize.. {
        let gateway = {
            let list = gateways.read().expect("never poisoned");
            list[(n + attempt) % list.len()].clone()
        };
        let answer = http
            .post(format!("{gateway}/api/v1/bookings/"))
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        let outcome = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Some((status, body))
            }
            Err(_) => None,
        };
        {
            let mut report = report.lock().expect("never poisoned");
            match outcome {
                Some((200, body)) => {
                    booking.id = body["id"].as_i64();
                    booking.acknowledged_at = Some(Instant::now());
                    report.bookings.push(booking);
                    return;
                }
                Some((409, _)) => {
                    report.sold_out += 1;
                    report.bookings.push(booking);
                    return;
                }
                Some((500, body)) => {
                    report.internal_errors.push(body.to_string());
                }
                Some((status, body)) if status < 500 => {
                    report.client_errors.push(format!("{status} {body}"));
                    report.bookings.push(booking);
                    return;
                }
                // 502/503/504 or transport: retryable, with the same key.
                _ => {}
            }
            report.retried += 1;
            report.failures.push(Instant::now());
            if started.elapsed() > GIVE_UP_AFTER {
                report.gave_up += 1;
                report.bookings.push(booking);
                return;
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
