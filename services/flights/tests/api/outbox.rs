//! The catalog's outbox does not grow with the events: published rows are purged after
//! `OUTBOX_RETENTION`, pending ones never.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::{TestMesh, eventually};

use crate::{client, create_destination};

#[derive(diesel::QueryableByName)]
struct Rows {
    #[diesel(sql_type = BigInt)]
    published: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

async fn rows(url: &str) -> (i64, i64) {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Rows = diesel::sql_query(
        "SELECT count(published_at) AS published, count(*) AS total FROM flights.outbox",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    (rows.published, rows.total)
}

#[tokio::test(flavor = "multi_thread")]
async fn published_catalog_events_are_purged_after_the_retention() {
    let mesh = TestMesh::start_with(|env, _| env.set("FLIGHTS_OUTBOX_RETENTION", "2s")).await;
    let mut client = client(&mesh).await;
    create_destination(&mut client, "Lima", "10").await;
    create_destination(&mut client, "Cusco", "20").await;
    // Four events (two `destination.created`, two `catalog.changed`), published…
    eventually(Duration::from_secs(10), || async {
        rows(mesh.db.url()).await == (4, 4)
    })
    .await;
    // …then gone once older than the retention.
    eventually(Duration::from_secs(15), || async {
        rows(mesh.db.url()).await == (0, 0)
    })
    .await;
    mesh.stop().await;
}
