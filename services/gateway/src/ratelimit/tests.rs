//! Unit tests of `ratelimit`.

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
    let limiter = RateLimiter::in_memory(limits, DEFAULT_MEMORY_CLIENTS);
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

fn limits(class: Class, requests: u64, window_secs: u64) -> HashMap<Class, Limit> {
    HashMap::from([(
        class,
        Limit {
            requests,
            window: Duration::from_secs(window_secs),
        },
    )])
}

fn memory_len(limiter: &RateLimiter) -> usize {
    match &limiter.store {
        Store::Memory(counts) => counts.len(),
        Store::Redis(redis) => redis.auth_fallback.len(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_memory_window_ends_after_its_length_with_an_honest_retry_after() {
    let limiter = RateLimiter::in_memory(limits(Class::Auth, 2, 10), 100);
    assert_eq!(limiter.check(Class::Auth, "a").await, Verdict::Allowed);
    tokio::time::advance(Duration::from_millis(3_500)).await;
    assert_eq!(limiter.check(Class::Auth, "a").await, Verdict::Allowed);
    assert_eq!(
        limiter.check(Class::Auth, "a").await,
        Verdict::Limited { retry_after: 7 },
        "6.5 s left, rounded up"
    );
    tokio::time::advance(Duration::from_millis(6_499)).await;
    assert_eq!(
        limiter.check(Class::Auth, "a").await,
        Verdict::Limited { retry_after: 1 }
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(limiter.check(Class::Auth, "a").await, Verdict::Allowed);
}

#[tokio::test(start_paused = true)]
async fn expired_windows_leave_the_map() {
    let limiter = RateLimiter::in_memory(limits(Class::Default, 5, 60), 1_000);
    for client in 0..500 {
        limiter.check(Class::Default, &format!("c{client}")).await;
    }
    assert_eq!(memory_len(&limiter), 500);
    tokio::time::advance(Duration::from_secs(59)).await;
    limiter.check(Class::Default, "late").await;
    assert_eq!(memory_len(&limiter), 501, "nothing expired yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    limiter.check(Class::Default, "after").await;
    assert_eq!(
        memory_len(&limiter),
        2,
        "the 500 first windows ended and were swept: {{late, after}} remain"
    );
}

#[tokio::test(start_paused = true)]
async fn the_map_never_exceeds_its_capacity_and_evicts_the_oldest_windows() {
    let limiter = RateLimiter::in_memory(limits(Class::Default, 1, 3600), 8);
    for client in 0..8 {
        assert_eq!(
            limiter.check(Class::Default, &format!("c{client}")).await,
            Verdict::Allowed
        );
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert_eq!(memory_len(&limiter), 8);
    // A ninth client: the two oldest windows (c0, c1) go, leaving 6 + the newcomer.
    assert_eq!(limiter.check(Class::Default, "new").await, Verdict::Allowed);
    assert_eq!(memory_len(&limiter), 7);
    assert!(
        matches!(
            limiter.check(Class::Default, "c7").await,
            Verdict::Limited { .. }
        ),
        "a recent window is kept"
    );
    assert_eq!(
        limiter.check(Class::Default, "c0").await,
        Verdict::Allowed,
        "the oldest window was evicted"
    );
    // Many distinct clients (a flood of addresses) never grow the map past the cap.
    for client in 0..10_000 {
        limiter
            .check(Class::Default, &format!("flood{client}"))
            .await;
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(memory_len(&limiter) <= 8);
    }
}

#[tokio::test]
async fn auth_falls_back_to_memory_when_redis_is_down_and_other_classes_pass() {
    let mut all = limits(Class::Auth, 3, 60);
    all.extend(limits(Class::Default, 1, 60));
    // Nothing listens on port 1.
    let limiter = RateLimiter::redis(all, "redis://127.0.0.1:1", "test:", 100).unwrap();
    for _ in 0..3 {
        assert_eq!(limiter.check(Class::Auth, "ip:a").await, Verdict::Allowed);
    }
    assert!(matches!(
        limiter.check(Class::Auth, "ip:a").await,
        Verdict::Limited { .. }
    ));
    assert_eq!(
        limiter.check(Class::Auth, "ip:b").await,
        Verdict::Allowed,
        "per client"
    );
    for _ in 0..3 {
        assert_eq!(
            limiter.check(Class::Default, "ip:a").await,
            Verdict::Allowed,
            "the default class fails open"
        );
    }
    assert_eq!(memory_len(&limiter), 2, "only auth was counted in memory");
}

#[tokio::test(start_paused = true)]
async fn a_failing_redis_is_logged_once_per_period_with_the_count() {
    let limiter =
        RateLimiter::redis(limits(Class::Auth, 3, 60), "redis://127.0.0.1:1", "", 10).unwrap();
    let Store::Redis(redis) = &limiter.store else {
        unreachable!("a Redis store")
    };
    assert_eq!(
        redis.log_failure("down"),
        Some(1),
        "the first failure is logged"
    );
    for _ in 0..99 {
        assert_eq!(redis.log_failure("down"), None);
    }
    tokio::time::advance(LOG_EVERY).await;
    assert_eq!(
        redis.log_failure("down"),
        Some(100),
        "the next line counts the silent ones"
    );
}
