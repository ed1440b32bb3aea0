//! Readiness reports the database's health, not whether a pool slot is free.

use std::time::Duration;

use flightmesh_db::{DbConfig, DbHealth};
use flightmesh_runtime::config::Env;
use flightmesh_testkit::TestDatabase;

mod support;

#[tokio::test(flavor = "multi_thread")]
async fn the_health_check_answers_while_every_pool_connection_is_busy() {
    let db = TestDatabase::create().await;
    // A pool of one, and a wait for its connection far longer than the check may take.
    let one_slow_slot = [
        ("DATABASE_MAX_CONNECTIONS", "1"),
        ("DATABASE_CONNECT_TIMEOUT", "30s"),
    ];
    let config = support::config(&db, &one_slow_slot);
    let pool = flightmesh_db::pool(&config);
    let health = DbHealth::new(&config);

    // The pool's only connection is taken: a check through the pool would wait 30 s for it.
    let held = pool.get().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), flightmesh_db::ping(&pool))
            .await
            .is_err(),
        "the pool is saturated"
    );
    // A correctness bound well under the 30 s connect timeout, not a benchmark.
    let checked = tokio::time::timeout(Duration::from_secs(10), health.check())
        .await
        .expect("the health check does not queue behind the pool");
    assert!(checked.is_ok(), "{checked:?}");
    drop(held);
    flightmesh_db::ping(&pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_check_fails_when_the_database_is_unreachable() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere"),
        ("DATABASE_CONNECT_TIMEOUT", "2s"),
    ]);
    let health = DbHealth::new(&DbConfig::from_env(&env).unwrap());
    assert!(health.check().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_health_connection_is_replaced_in_the_same_check() {
    let db = TestDatabase::create().await;
    let config = support::config(&db, &[]);
    let health = DbHealth::new(&config);
    health.check().await.expect("the first check connects");

    // Every backend of the database goes, the health check's own connection with them.
    assert!(
        db.terminate_backends().await >= 1,
        "the check's connection was killed"
    );
    health
        .check()
        .await
        .expect("a killed connection is not a database that is down");
}
