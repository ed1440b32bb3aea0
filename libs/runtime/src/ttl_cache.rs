//! A small per-replica cache whose entries expire after a fixed time, bounded in size: what
//! saves a round trip for a value that may be a little stale (a flight's price facts, a user's
//! role), never memory without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

// tokio's clock: the same as std's, except in tests that pause time.
use tokio::time::Instant;

/// Entries live for `ttl`; at most `capacity` are kept. `Duration::ZERO` disables it: nothing is
/// kept, every lookup misses.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` (at least 1) entries, each fresh for `ttl`.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value kept for `key`, if it is still fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        self.lock()
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` for `key`. When full, expired entries are swept first; if it is still full
    /// of fresh ones, any one is dropped (a miss only costs the lookup it saved).
    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Entries kept now, fresh or not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic elsewhere while holding the lock leaves a map that is still consistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_is_bounded_and_keeps_the_newest_entry() {
        let cache = TtlCache::new(Duration::from_secs(60), 3);
        for key in 0..100 {
            cache.insert(key, key * 10);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&99), Some(990));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(10), 10);
        cache.insert("flight", 1);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(cache.get(&"flight"), Some(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(&"flight"), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = TtlCache::new(Duration::ZERO, 10);
        cache.insert(1, 1);
        assert!(cache.is_empty());
        assert_eq!(cache.get(&1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_sweeps_expired_entries_before_dropping_fresh_ones() {
        let cache = TtlCache::new(Duration::from_secs(10), 2);
        cache.insert(1, 1);
        cache.insert(2, 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        cache.insert(3, 3);
        cache.insert(4, 4);
        assert_eq!((cache.get(&3), cache.get(&4)), (Some(3), Some(4)));
    }
}
