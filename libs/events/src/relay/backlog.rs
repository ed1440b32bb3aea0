//! The relay's metrics: their declarations, and the backlog gauges reported while it runs.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double};
use diesel_async::RunQueryDsl;
use flightmesh_db::PgPool;
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::metrics::Metric;

/// The relay's metrics, by outbox table.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "outbox_published_total",
        "Events published and confirmed by the broker",
    )
    .labelled(),
    Metric::counter(
        "outbox_publish_failures_total",
        "Publishes nacked, returned or unconfirmed (retried)",
    )
    .labelled(),
    Metric::gauge(
        "outbox_pending_events",
        "Events written but not yet confirmed by the broker",
    )
    .labelled(),
    Metric::gauge(
        "outbox_oldest_pending_seconds",
        "Age of the oldest unpublished event",
    )
    .labelled(),
];

/// Every 5 s: `outbox_pending_events` and `outbox_oldest_pending_seconds` for `table`.
pub(super) async fn report_backlog(pool: PgPool, table: String, shutdown: CancellationToken) {
    #[derive(diesel::QueryableByName)]
    struct Backlog {
        #[diesel(sql_type = BigInt)]
        pending: i64,
        #[diesel(sql_type = Double)]
        oldest_seconds: f64,
    }
    let pending = metrics::gauge!("outbox_pending_events", "table" => table.clone());
    let oldest = metrics::gauge!("outbox_oldest_pending_seconds", "table" => table.clone());
    loop {
        let backlog = async {
            let mut conn = pool.get().await.ok()?;
            flightmesh_db::prepared(format!(
                "SELECT count(*) AS pending, \
                 COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest_seconds \
                 FROM {table} WHERE published_at IS NULL"
            ))
            .get_result::<Backlog>(&mut conn)
            .await
            .ok()
        }
        .await;
        if let Some(backlog) = backlog {
            #[allow(clippy::cast_precision_loss)]
            pending.set(backlog.pending as f64);
            oldest.set(backlog.oldest_seconds);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
