//! Rate limiting per client (the user when signed in, else the IP) and per route class, in fixed
//! windows: in memory (one gateway) or in Redis (every replica shares one budget). The answer past
//! the limit is 429 with the contract's message and `Retry-After`. If Redis fails, requests pass:
//! an outage of the limiter must not become an outage of the API.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

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

/// Where counts are kept.
enum Store {
    Memory(Mutex<HashMap<(Class, String), (u64, u64)>>),
    Redis {
        client: redis::Client,
        manager: OnceCell<ConnectionManager>,
        prefix: String,
    },
}

/// The limiter.
pub struct RateLimiter {
    limits: HashMap<Class, Limit>,
    store: Store,
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
    /// An in-memory limiter.
    #[must_use]
    pub fn in_memory(limits: HashMap<Class, Limit>) -> Self {
        Self {
            limits,
            store: Store::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// A limiter whose counts live in Redis (shared by replicas).
    pub fn redis(
        limits: HashMap<Class, Limit>,
        url: &str,
        prefix: &str,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            limits,
            store: Store::Redis {
                client: redis::Client::open(url)?,
                manager: OnceCell::new(),
                prefix: prefix.to_owned(),
            },
        })
    }

    /// Counts a request of `client` on `class` and says whether it may pass.
    pub async fn check(&self, class: Class, client: &str) -> Verdict {
        let Some(limit) = self.limits.get(&class).copied() else {
            return Verdict::Allowed;
        };
        let window = limit.window.as_secs().max(1);
        let now = now_secs();
        let window_start = now - now % window;
        let retry_after = (window_start + window).saturating_sub(now).max(1);
        let count = match &self.store {
            Store::Memory(counts) => {
                let mut counts = counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if counts.len() > 100_000 {
                    counts.retain(|_, (start, _)| *start == window_start);
                }
                let entry = counts
                    .entry((class, client.to_owned()))
                    .or_insert((window_start, 0));
                if entry.0 != window_start {
                    *entry = (window_start, 0);
                }
                entry.1 += 1;
                entry.1
            }
            Store::Redis {
                client: redis_client,
                manager,
                prefix,
            } => {
                let key = format!("{prefix}ratelimit:{}:{client}:{window_start}", class.name());
                let counted = async {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_millis(500)))
                        .set_response_timeout(Some(Duration::from_millis(500)))
                        .set_number_of_retries(0);
                    let mut conn = manager
                        .get_or_try_init(|| {
                            ConnectionManager::new_with_config(redis_client.clone(), config)
                        })
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
                match counted {
                    Ok(count) => count,
                    Err(err) => {
                        tracing::warn!(error = %err, "rate limiter store unavailable; letting the request through");
                        metrics::counter!("gateway_rate_limiter_errors_total").increment(1);
                        return Verdict::Allowed;
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
mod tests {
    use super::*;

    #[test]
    fn parses_limits() {
        assert_eq!(
            "300/60s".parse(),
            Ok(Limit {
                requests: 300,
                window: Duration::from_secs(60)
            })
        );
        assert!("0/60s".parse::<Limit>().is_err());
        assert!("300".parse::<Limit>().is_err());
    }

    #[test]
    fn classes_by_route() {
        assert_eq!(Class::of("/api/v1/ai/chat"), Class::Ai);
        assert_eq!(Class::of("/api/v1/auth/login"), Class::Auth);
        assert_eq!(Class::of("/api/v1/bookings"), Class::Default);
    }

    #[tokio::test]
    async fn memory_limiter_counts_per_client_and_class() {
        let limits = HashMap::from([(
            Class::Ai,
            Limit {
                requests: 2,
                window: Duration::from_secs(3600),
            },
        )]);
        let limiter = RateLimiter::in_memory(limits);
        assert_eq!(limiter.check(Class::Ai, "a").await, Verdict::Allowed);
        assert_eq!(limiter.check(Class::Ai, "a").await, Verdict::Allowed);
        assert!(matches!(
            limiter.check(Class::Ai, "a").await,
            Verdict::Limited { .. }
        ));
        assert_eq!(limiter.check(Class::Ai, "b").await, Verdict::Allowed);
        assert_eq!(
            limiter.check(Class::Default, "a").await,
            Verdict::Allowed,
            "no limit configured"
        );
    }
}
