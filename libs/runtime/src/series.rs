//! Metric handles kept by their label values, registered once.
//!
//! `metrics::counter!("name", labels)` builds a key from its labels (owned strings, a hash) and
//! looks it up in the recorder's registry on every call. On a hot path that costs more than the
//! increment itself: in the gateway, 7.6% of its CPU per REST booking went there
//! (`bench/profile.py`, docs/benchmarks.md). A [`Series`] keeps the handles a label set resolved
//! to, so the next call with the same labels is one read-locked map lookup by `&str`.

use std::collections::HashMap;
use std::sync::RwLock;

/// Past this many label sets the handles are still made, just not kept: a label fed by client
/// input (an unknown HTTP method, say) must not grow the map without bound.
const MAX_SERIES: usize = 4096;

/// Handles `H` (a counter, a histogram, a tuple of them) by a key written from their labels.
#[derive(Debug)]
pub struct Series<H> {
    by_key: RwLock<HashMap<Box<str>, H>>,
}

impl<H> Default for Series<H> {
    fn default() -> Self {
        Self {
            by_key: RwLock::new(HashMap::new()),
        }
    }
}

impl<H: Clone> Series<H> {
    /// A cache whose handles come from the process's recorder: the recorder is installed first,
    /// so that no handle is made (and kept) before it exists.
    #[must_use]
    pub fn new() -> Self {
        crate::metrics::handle();
        Self::default()
    }

    /// The handles for `key` (one string that tells the label values apart), made by
    /// `register` the first time.
    pub fn get(&self, key: &str, register: impl FnOnce() -> H) -> H {
        if let Some(handles) = self
            .by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
        {
            return handles.clone();
        }
        let handles = register();
        let mut by_key = self
            .by_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if by_key.len() < MAX_SERIES {
            by_key.entry(key.into()).or_insert_with(|| handles.clone());
        }
        handles
    }

    /// How many label sets are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none is kept yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn registers_a_label_set_once_and_answers_the_same_handles() {
        let series = Series::<usize>::default();
        let registered = AtomicUsize::new(0);
        let register = |value| {
            registered.fetch_add(1, Ordering::Relaxed);
            value
        };
        assert_eq!(series.get("POST 201 /a", || register(1)), 1);
        assert_eq!(series.get("POST 201 /a", || register(2)), 1);
        assert_eq!(series.get("GET 200 /a", || register(3)), 3);
        assert_eq!(registered.load(Ordering::Relaxed), 2);
        assert_eq!(series.len(), 2);
    }

    #[test]
    fn keeps_at_most_max_series_label_sets() {
        let series = Series::<usize>::default();
        for n in 0..MAX_SERIES + 10 {
            assert_eq!(series.get(&format!("M{n}"), || n), n);
        }
        assert_eq!(series.len(), MAX_SERIES);
        // One past the bound is made each time, and still right.
        assert_eq!(series.get(&format!("M{}", MAX_SERIES + 1), || 7), 7);
    }

    #[test]
    fn handles_made_through_the_cache_count_in_the_recorder() {
        let series = Series::<metrics::Counter>::new();
        for _ in 0..3 {
            series
                .get(
                    "x",
                    || metrics::counter!("series_test_total", "label" => "x"),
                )
                .increment(1);
        }
        assert!(
            crate::metrics::render().contains("series_test_total{label=\"x\"} 3"),
            "{}",
            crate::metrics::render()
        );
    }
}
