//! Rate limiting per client (the user when signed in, else the address) and per route class, in
//! fixed windows: in memory (one gateway) or in Redis (every replica shares one budget). The
//! answer past the limit is 429 with the contract's message and `Retry-After`.
//!
//! The in-memory map is bounded: an entry lives for its window, a sweep drops expired entries
//! once per longest window, and at `RATE_LIMIT_MEMORY_CLIENTS` entries the oldest windows are
//! evicted (a quarter of the map at a time, so the cost per request stays constant).
//!
//! If Redis fails, the auth class (login, register: password guessing) is counted in this
//! replica's memory instead — each replica then enforces the whole budget on its own, so the
//! bound is the budget times the replica count, never unlimited. The other classes let requests
//! through: they protect capacity, not secrets, and refusing everything because Redis blinked
//! would turn a cache outage into an API outage. Both are counted in metrics and logged at most
//! once per [`LOG_EVERY`]. After a failure Redis is not asked again for [`REDIS_BACKOFF`], so a
//! black-holed Redis costs one timeout per backoff, not one per request.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Default of `RATE_LIMIT_MEMORY_CLIENTS`: about 100 bytes per entry, ~10 MB at the cap.
pub const DEFAULT_MEMORY_CLIENTS: usize = 100_000;
/// How long Redis is left alone after a failure.
pub const REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line about an unusable Redis per this period (with the count since the last).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// `N/window`, e.g. `300/60s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u64,
    pub window: Duration,
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (requests, window) = s.split_once('/').ok_or("expected N/window, e.g. 300/60s")?;
        let requests: u64 = requests
            .trim()
            .parse()
            .map_err(|_| format!("{requests:?} is not a number"))?;
        let window = window.parse::<flightmesh_runtime::config::Dur>()?.0;
        if requests == 0 || window.is_zero() {
            return Err("both the count and the window must be positive".into());
        }
        Ok(Self { requests, window })
    }
}

/// Routes limited together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `/api/v1/ai/*`: expensive, stricter.
    Ai,
    /// `/api/v1/auth/login` and `/register`: password guessing.
    Auth,
    /// Everything else under `/api/v1`.
    Default,
}

impl Class {
    /// The class of a route template.
    #[must_use]
    pub fn of(template: &str) -> Self {
        if template.starts_with("/api/v1/ai/") {
            Self::Ai
        } else if matches!(template, "/api/v1/auth/login" | "/api/v1/auth/register") {
            Self::Auth
        } else {
            Self::Default
        }
    }

    /// Its name in configuration and metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ai => "ai",
            Self::Auth => "auth",
            Self::Default => "default",
        }
    }
}

/// One client's count in the current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    length: Duration,
    count: u64,
}

impl Window {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.started) >= self.length
    }
}

/// The in-memory store: fixed windows that start at a client's first request, bounded.
#[derive(Debug)]
struct MemoryCounts {
    capacity: usize,
    state: Mutex<MemoryState>,
}

#[derive(Debug)]
struct MemoryState {
    windows: HashMap<(Class, String), Window>,
    last_sweep: Instant,
}

impl MemoryCounts {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(MemoryState {
                windows: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Counts one request; returns the count in the window and the seconds left of it.
    fn count(&self, class: Class, client: &str, limit: Limit, sweep_every: Duration) -> (u64, u64) {
        let now = Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(state.last_sweep) >= sweep_every {
            state.windows.retain(|_, window| !window.expired(now));
            state.last_sweep = now;
        }
        let key = (class, client.to_owned());
        if !state.windows.contains_key(&key) && state.windows.len() >= self.capacity {
            self.make_room(&mut state.windows, now);
        }
        let window = state.windows.entry(key).or_insert(Window {
            started: now,
            length: limit.window,
            count: 0,
        });
        if window.expired(now) {
            *window = Window {
                started: now,
                length: limit.window,
                count: 0,
            };
        }
        window.count += 1;
        let left = window
            .length
            .saturating_sub(now.duration_since(window.started));
        let left_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        (window.count, left_secs.max(1))
    }

    /// Drops expired windows; if the map is still full, evicts the oldest windows down to three
    /// quarters of the capacity (O(n) once per n/4 new clients).
    fn make_room(&self, windows: &mut HashMap<(Class, String), Window>, now: Instant) {
        windows.retain(|_, window| !window.expired(now));
        let keep = self.capacity * 3 / 4;
        if windows.len() < self.capacity {
            return;
        }
        let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
        let evict = windows.len() - keep;
        let (_, threshold, _) = starts.select_nth_unstable(evict - 1);
        let threshold = *threshold;
        let before = windows.len();
        windows.retain(|_, window| window.started > threshold);
        // Ties at the threshold: the ones just dropped may be more than needed; that is fine,
        // the map only has to get below the capacity.
        let evicted = before - windows.len();
        tracing::warn!(
            evicted,
            capacity = self.capacity,
            "rate limiter memory full: evicted the oldest windows"
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .windows
            .len()
    }
}

/// The shared store.
struct RedisCounts {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    prefix: String,
    /// Redis is not asked before this instant (after a failure).
    resting_until: Mutex<Option<Instant>>,
    /// Failures since the last log line, and when that line was written.
    unlogged_failures: AtomicU64,
    last_log: Mutex<Option<Instant>>,
    /// Where the auth class is counted while Redis fails.
    auth_fallback: MemoryCounts,
}

impl RedisCounts {
    async fn count(
        &self,
        class: Class,
        client: &str,
        window: u64,
        window_start: u64,
    ) -> Result<u64, String> {
        if self
            .resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
        {
            return Err("resting after a failure".to_owned());
        }
        let key = format!(
            "{}ratelimit:{}:{client}:{window_start}",
            self.prefix,
            class.name()
        );
        let counted = async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(0);
            let mut conn = self
                .manager
                .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
                .await?
                .clone();
            let (count,): (u64,) = redis::pipe()
                .atomic()
                .incr(&key, 1)
                .expire(&key, i64::try_from(window + 1).unwrap_or(i64::MAX))
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(count)
        }
        .await;
        counted.map_err(|err| {
            *self
                .resting_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Instant::now() + REDIS_BACKOFF);
            err.to_string()
        })
    }

    /// One warning per [`LOG_EVERY`] with the number of failures it stands for; returns how many
    /// failures the line written now stands for (`None`: no line now).
    fn log_failure(&self, error: &str) -> Option<u64> {
        self.unlogged_failures.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self
            .last_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            *last = Some(now);
            let failures = self.unlogged_failures.swap(0, Ordering::Relaxed);
            tracing::warn!(
                %error,
                failures,
                "shared rate limiter unavailable: auth counted in this replica's memory, other classes let through"
            );
            return Some(failures);
        }
        None
    }
}

/// Where counts are kept.
enum Store {
    Memory(MemoryCounts),
    Redis(Box<RedisCounts>),
}

/// The limiter.
pub struct RateLimiter {
    limits: HashMap<Class, Limit>,
    store: Store,
    /// The longest configured window: how often the memory map is swept.
    sweep_every: Duration,
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; retry after this many seconds.
    Limited {
        retry_after: u64,
    },
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl RateLimiter {
    /// An in-memory limiter tracking at most `capacity` (class, client) windows.
    #[must_use]
    pub fn in_memory(limits: HashMap<Class, Limit>, capacity: usize) -> Self {
        Self {
            sweep_every: Self::longest_window(&limits),
            limits,
            store: Store::Memory(MemoryCounts::new(capacity)),
        }
    }

    /// A limiter whose counts live in Redis (shared by replicas); `capacity` bounds the auth
    /// class's in-memory fallback.
    pub fn redis(
        limits: HashMap<Class, Limit>,
        url: &str,
        prefix: &str,
        capacity: usize,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            sweep_every: Self::longest_window(&limits),
            limits,
            store: Store::Redis(Box::new(RedisCounts {
                client: redis::Client::open(url)?,
                manager: OnceCell::new(),
                prefix: prefix.to_owned(),
                resting_until: Mutex::new(None),
                unlogged_failures: AtomicU64::new(0),
                last_log: Mutex::new(None),
                auth_fallback: MemoryCounts::new(capacity),
            })),
        })
    }

    fn longest_window(limits: &HashMap<Class, Limit>) -> Duration {
        limits
            .values()
            .map(|limit| limit.window)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// Counts a request of `client` on `class` and says whether it may pass.
    pub async fn check(&self, class: Class, client: &str) -> Verdict {
        let Some(limit) = self.limits.get(&class).copied() else {
            return Verdict::Allowed;
        };
        let (count, retry_after) = match &self.store {
            Store::Memory(counts) => counts.count(class, client, limit, self.sweep_every),
            Store::Redis(redis) => {
                // Windows aligned on the wall clock, so that every replica counts the same one.
                let window = limit.window.as_secs().max(1);
                let now = now_secs();
                let window_start = now - now % window;
                match redis.count(class, client, window, window_start).await {
                    Ok(count) => (count, (window_start + window).saturating_sub(now).max(1)),
                    Err(error) => {
                        metrics::counter!("gateway_rate_limiter_errors_total").increment(1);
                        let _logged = redis.log_failure(&error);
                        if class != Class::Auth {
                            return Verdict::Allowed;
                        }
                        metrics::counter!("gateway_rate_limiter_fallbacks_total").increment(1);
                        redis
                            .auth_fallback
                            .count(class, client, limit, self.sweep_every)
                    }
                }
            }
        };
        if count > limit.requests {
            Verdict::Limited { retry_after }
        } else {
            Verdict::Allowed
        }
    }
}

#[cfg(test)]
mod tests;
