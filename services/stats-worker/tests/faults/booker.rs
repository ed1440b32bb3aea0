//! A client population booking at a steady rate (open loop) through the gateway, the way the
//! contract asks clients to: an `Idempotency-Key` per booking, retried after a 5xx or a transport
//! error until it gets an answer. Every eighth booking is cancelled afterwards. It remembers which
//! bookings it was told succeeded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a client keeps retrying one booking before it gives up (a failure of the test).
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// A flight the clients book.
#[derive(Debug, Clone, Copy)]
pub struct Flight {
    /// Its id.
    pub id: i64,
    /// Whether its destination takes pets (clients only bring one where it does).
    pub pets: bool,
}

#[derive(Default)]
struct State {
    acked: Mutex<Vec<i64>>,
    acked_count: AtomicU64,
    acked_after_fault: AtomicU64,
    fault_over: AtomicBool,
    outcomes: Mutex<BTreeMap<String, u64>>,
    retries: AtomicU64,
    cancelled: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

impl State {
    fn outcome(&self, label: &str) {
        *self
            .outcomes
            .lock()
            .unwrap()
            .entry(label.to_owned())
            .or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }
}

/// The running clients.
pub struct Booker {
    state: Arc<State>,
    stop: CancellationToken,
    schedule: tokio::task::JoinHandle<JoinSet<()>>,
}

/// What the clients saw.
pub struct Report {
    state: Arc<State>,
}

impl Booker {
    /// Starts booking `per_second` times a second on `flights` through the gateway at `base`.
    pub fn start(base: &str, flights: Vec<Flight>, per_second: f64) -> Self {
        let state = Arc::new(State::default());
        let stop = CancellationToken::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let run = uuid_like();
        let (base, schedule_state, schedule_stop) = (base.to_owned(), state.clone(), stop.clone());
        let schedule = tokio::spawn(async move {
            let mut clients = JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 0u64.. {
                tokio::select! {
                    () = schedule_stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let flight = flights[usize::try_from(n).unwrap() % flights.len()];
                let client = Client {
                    http: http.clone(),
                    base: base.clone(),
                    state: schedule_state.clone(),
                };
                let key = format!("{run}-{n}");
                clients.spawn(async move { client.book(n, flight, key).await });
            }
            clients
        });
        Self {
            state,
            stop,
            schedule,
        }
    }

    /// Bookings acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.state.acked_count.load(Ordering::SeqCst)
    }

    /// Marks the end of the fault: acknowledgements from now on show the system recovered.
    pub fn fault_over(&self) {
        self.state.fault_over.store(true, Ordering::SeqCst);
    }

    /// Stops sending new bookings and waits for every client to get its answer.
    pub async fn stop(self) -> Report {
        self.stop.cancel();
        let mut clients = self.schedule.await.expect("the schedule ran");
        while clients.join_next().await.is_some() {}
        Report { state: self.state }
    }
}

impl Report {
    /// Ids of the bookings clients were told succeeded.
    pub fn acked_ids(&self) -> Vec<i64> {
        self.state.acked.lock().unwrap().clone()
    }

    /// How many answers had this label (`409`, …).
    pub fn outcome(&self, label: &str) -> u64 {
        self.state
            .outcomes
            .lock()
            .unwrap()
            .get(label)
            .copied()
            .unwrap_or(0)
    }

    /// Calls made again after a 5xx or a transport error.
    pub fn retries(&self) -> u64 {
        self.state.retries.load(Ordering::SeqCst)
    }

    /// Bookings cancelled.
    pub fn cancelled(&self) -> u64 {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Bookings acknowledged after the fault ended.
    pub fn acked_after_fault(&self) -> u64 {
        self.state.acked_after_fault.load(Ordering::SeqCst)
    }

    /// Answers the contract does not allow here, and clients that gave up.
    pub fn unexpected(&self) -> Vec<String> {
        self.state.unexpected.lock().unwrap().clone()
    }
}

/// A unique run id, so two runs never share Idempotency-Keys.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("fault-{nanos:x}")
}

struct Client {
    http: reqwest::Client,
    base: String,
    state: Arc<State>,
}

enum Answer {
    Done(u16, Value),
    Retry,
}

impl Client {
    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        match request.send().await {
            Ok(response) if response.status().is_server_error() => Answer::Retry,
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json().await.unwrap_or(Value::Null);
                Answer::Done(status, body)
            }
            Err(_) => Answer::Retry,
        }
    }

    /// POSTs until an answer that is not a 5xx nor a transport error.
    async fn until_answered(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let started = Instant::now();
        loop {
            match self.post(path, key, body).await {
                Answer::Done(status, body) => return Some((status, body)),
                Answer::Retry if started.elapsed() < GIVE_UP_AFTER => {
                    self.state.retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Answer::Retry => {
                    self.state
                        .unexpected(format!("gave up on {path} after {GIVE_UP_AFTER:?}"));
                    return None;
                }
            }
        }
    }

    async fn book(self, n: u64, flight: Flight, key: String) {
        let body = json!({
            "passenger_name": format!("Pasajero {n}"),
            "passenger_age": if n.is_multiple_of(5) { 7 } else { 30 + n % 40 },
            "has_pet": flight.pets && n.is_multiple_of(4),
            "flight_id": flight.id,
        });
        let Some((status, answer)) = self
            .until_answered("/api/v1/bookings/", Some(&key), &body)
            .await
        else {
            return;
        };
        self.state.outcome(&status.to_string());
        match status {
            200 => {
                let Some(id) = answer["id"].as_i64() else {
                    self.state
                        .unexpected(format!("200 without an id: {answer}"));
                    return;
                };
                self.state.acked.lock().unwrap().push(id);
                self.state.acked_count.fetch_add(1, Ordering::SeqCst);
                if self.state.fault_over.load(Ordering::SeqCst) {
                    self.state.acked_after_fault.fetch_add(1, Ordering::SeqCst);
                }
                if n.is_multiple_of(8) {
                    self.cancel(id).await;
                }
            }
            // Sold out: an answer, not a failure.
            409 => {}
            other => self
                .state
                .unexpected(format!("booking {n}: {other} {answer}")),
        }
    }

    async fn cancel(&self, id: i64) {
        let path = format!("/api/v1/bookings/{id}/cancel");
        match self.until_answered(&path, None, &json!({})).await {
            Some((200, answer)) if answer["status"] == json!("cancelled") => {
                self.state.cancelled.fetch_add(1, Ordering::SeqCst);
            }
            Some((status, answer)) => self
                .state
                .unexpected(format!("cancel {id}: {status} {answer}")),
            None => {}
        }
    }
}
