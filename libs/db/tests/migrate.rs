//! Migrations apply on either of Tokio's schedulers: a service given one runtime thread
//! (`TOKIO_WORKER_THREADS=1`, the charts' setting) runs on the current-thread one, where
//! diesel's synchronous harness cannot block in place.

use diesel_migrations::EmbeddedMigrations;
use flightmesh_testkit::TestDatabase;

mod support;

static PROBE: &[EmbeddedMigrations] = &[diesel_migrations::embed_migrations!(
    "tests/support/migrations"
)];

/// Migrates a fresh database's `schema` twice: the probe migration is applied, then found applied.
async fn migrations_apply_once(schema: &str) {
    let db = TestDatabase::create().await;
    let url = support::config(&db, &[]).url;
    let first = flightmesh_db::migrate(&url, schema, PROBE).await.unwrap();
    assert_eq!(first, ["20260101000001"]);
    let again = flightmesh_db::migrate(&url, schema, PROBE).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    let recorded = db
        .count(&format!(
            "SELECT count(*) FROM {schema}.__diesel_schema_migrations"
        ))
        .await;
    assert_eq!(recorded, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn migrations_apply_once_on_the_current_thread_scheduler() {
    migrations_apply_once("probe_current").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_on_the_multi_threaded_scheduler() {
    migrations_apply_once("probe_multi").await;
}
