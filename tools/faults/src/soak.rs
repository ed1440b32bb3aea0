//! Bounded growth: what a long steady run leaves behind, sampled.

use std::collections::BTreeMap;
use std::time::Instant;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::deploy::Deployment;

/// The tables whose size a soak follows.
pub const TABLES: [&str; 4] = [
    "bookings.bookings",
    "bookings.outbox",
    "bookings.idempotency_keys",
    "flights.outbox",
];

/// One look at everything that could grow.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t: f64,
    /// Resident memory per process, in KiB.
    pub rss_kib: BTreeMap<String, u64>,
    /// Open file descriptors per process.
    pub fds: BTreeMap<String, u64>,
    /// Rows per table.
    pub rows: BTreeMap<String, i64>,
    /// Bytes per table (indexes and TOAST included).
    pub bytes: BTreeMap<String, i64>,
    /// Messages waiting in the stats queue.
    pub queue_depth: u32,
    /// Redis `used_memory`.
    pub redis_memory: u64,
    /// Keys in the deployment's Redis.
    pub redis_keys: u64,
}

impl Sample {
    /// As JSON, one object per sample.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "t": self.t, "rss_kib": self.rss_kib, "fds": self.fds, "rows": self.rows,
            "bytes": self.bytes, "queue_depth": self.queue_depth,
            "redis_memory": self.redis_memory, "redis_keys": self.redis_keys,
        })
    }
}

#[derive(diesel::QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Open descriptors of a process.
fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

impl Deployment {
    /// Samples every process, table, the queue and Redis, `started` being the soak's start.
    ///
    /// # Panics
    /// If PostgreSQL or Redis cannot be read.
    pub async fn sample(&self, started: Instant) -> Sample {
        let mut sample = Sample {
            t: started.elapsed().as_secs_f64(),
            ..Sample::default()
        };
        for name in self.running() {
            let pid = self.pid(&name);
            sample.rss_kib.insert(name.clone(), rss_kib(pid));
            sample.fds.insert(name, fds(pid));
        }
        let mut conn = AsyncPgConnection::establish(self.database_url())
            .await
            .expect("the deployment's database");
        for table in TABLES {
            let size: Size = diesel::sql_query(format!(
                "SELECT count(*) AS rows, pg_total_relation_size('{table}') AS bytes FROM {table}"
            ))
            .get_result(&mut conn)
            .await
            .expect("a table size");
            sample.rows.insert(table.to_owned(), size.rows);
            sample.bytes.insert(table.to_owned(), size.bytes);
        }
        sample.queue_depth = self.stats_queue_depth().await;
        let client = redis::Client::open(self.redis_url.as_str()).expect("a Redis URL");
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("the deployment's Redis");
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut redis)
            .await
            .expect("INFO memory");
        sample.redis_memory = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        sample.redis_keys = redis::cmd("DBSIZE")
            .query_async(&mut redis)
            .await
            .expect("DBSIZE");
        sample
    }
}

/// Least-squares slope of `points` (x, y): how fast y grows per unit of x.
#[must_use]
pub fn slope(points: &[(f64, f64)]) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slopes_of_lines_and_of_flat_noise() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), 3.0 * f64::from(x) + 1.0))
            .collect();
        assert!((slope(&line) - 3.0).abs() < 1e-9);
        let flat = [(0.0, 5.0), (1.0, 6.0), (2.0, 4.0), (3.0, 5.0)];
        assert!(slope(&flat).abs() < 0.5);
        assert!(slope(&[(1.0, 1.0)]).abs() < f64::EPSILON);
    }
}
