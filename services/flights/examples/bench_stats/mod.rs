//! Latency figures and the command line shared by the destination-search benchmarks.

use std::time::Duration;

/// The `p`-th percentile (nearest rank) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The catalog sizes to measure: the first argument, comma-separated (`1000,10000`), or 1,000,
/// 10,000 and 100,000.
pub fn sizes_from_args() -> Vec<usize> {
    std::env::args()
        .nth(1)
        .map(|arg| {
            arg.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}
