//! Latency and outcome accounting: an HDR histogram per worker, merged at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// What one worker (or the whole run, once merged) saw.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latencies of successful calls, in microseconds.
    pub latency: Histogram<u64>,
    /// Latencies of the other calls (errors, 503s): how fast a refusal comes matters too.
    pub failed_latency: Histogram<u64>,
    /// Calls by outcome label.
    pub outcomes: BTreeMap<String, u64>,
    /// Successful calls.
    pub ok: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            // 1 µs to 5 min at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds"),
            failed_latency: Histogram::new_with_bounds(1, 300_000_000, 3)
                .expect("valid histogram bounds"),
            outcomes: BTreeMap::new(),
            ok: 0,
        }
    }
}

impl Recorder {
    /// Counts one call.
    pub fn record(&mut self, label: &str, ok: bool, latency: Duration) {
        *self.outcomes.entry(label.to_owned()).or_insert(0) += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if ok {
            self.ok += 1;
            self.latency.saturating_record(micros);
        } else {
            self.failed_latency.saturating_record(micros);
        }
    }

    /// Adds another recorder's counts.
    pub fn merge(&mut self, other: &Self) {
        let _ = self.latency.add(&other.latency);
        let _ = self.failed_latency.add(&other.failed_latency);
        for (label, count) in &other.outcomes {
            *self.outcomes.entry(label.clone()).or_insert(0) += count;
        }
        self.ok += other.ok;
    }
}

/// The end-of-run summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Successful calls per second.
    pub throughput: f64,
    /// Successful calls.
    pub ok: u64,
    /// Every call.
    pub total: u64,
    /// Latency percentiles in milliseconds: p50, p90, p99, p99.9, max.
    pub percentiles_ms: [f64; 5],
    /// The same for the calls that were not ok (zeros when there were none).
    pub failed_percentiles_ms: [f64; 5],
    /// Mean latency of the successful calls, in milliseconds.
    pub mean_ms: f64,
    /// Calls by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Measured time.
    pub elapsed: Duration,
}

impl Summary {
    /// Summarises a merged recorder over `elapsed`.
    #[must_use]
    pub fn new(recorder: &Recorder, elapsed: Duration) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let ms = |micros: u64| micros as f64 / 1000.0;
        let percentiles = |h: &Histogram<u64>| {
            [
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.90)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
            ]
        };
        #[allow(clippy::cast_precision_loss)]
        Self {
            throughput: recorder.ok as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            ok: recorder.ok,
            total: recorder.outcomes.values().sum(),
            percentiles_ms: percentiles(&recorder.latency),
            failed_percentiles_ms: percentiles(&recorder.failed_latency),
            mean_ms: recorder.latency.mean() / 1000.0,
            outcomes: recorder.outcomes.clone(),
            elapsed,
        }
    }

    /// Human-readable lines.
    #[must_use]
    pub fn text(&self) -> String {
        let [p50, p90, p99, p999, max] = self.percentiles_ms;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "throughput {:.0}/s ({} ok of {} in {:.1}s)",
            self.throughput,
            self.ok,
            self.total,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "latency ms  p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}"
        );
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "outcomes    {}", outcomes.join(" "));
        if self.ok < self.total {
            let [p50, _, p99, _, max] = self.failed_percentiles_ms;
            let _ = writeln!(out, "not ok ms   p50 {p50:.2}  p99 {p99:.2}  max {max:.2}");
        }
        out
    }

    /// One JSON object, for scripts.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        let [p50, p90, p99, p999, max] = self.percentiles_ms;
        serde_json::json!({
            "throughput": self.throughput, "ok": self.ok, "total": self.total,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p999_ms": p999, "max_ms": max,
            "mean_ms": self.mean_ms,
            "outcomes": self.outcomes,
            "failed_p50_ms": self.failed_percentiles_ms[0],
            "failed_p99_ms": self.failed_percentiles_ms[2],
            "failed_max_ms": self.failed_percentiles_ms[4],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_summarises() {
        let mut a = Recorder::default();
        for ms in 1..=100 {
            a.record("200", true, Duration::from_millis(ms));
        }
        let mut b = Recorder::default();
        b.record("409", false, Duration::from_millis(1));
        a.merge(&b);
        let summary = Summary::new(&a, Duration::from_secs(10));
        assert_eq!((summary.ok, summary.total), (100, 101));
        assert!((summary.throughput - 10.0).abs() < 1e-9);
        assert!(
            (summary.percentiles_ms[0] - 50.0).abs() < 0.1,
            "{:?}",
            summary.percentiles_ms
        );
        assert_eq!(summary.outcomes["409"], 1);
    }
}
