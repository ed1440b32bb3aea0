//! A test database that a killed test run left (its `Drop` never ran) is dropped, with its
//! service roles, by the next run's first `TestDatabase::create`.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_testkit::{TestDatabase, admin_url, count, ended_pid};

#[tokio::test(flavor = "multi_thread")]
async fn a_database_left_by_a_killed_run_is_dropped_with_its_roles() {
    let mut admin = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("PostgreSQL runs");
    let left = format!("fm_test_{}_left", ended_pid());
    for statement in [
        format!("CREATE DATABASE {left}"),
        format!("CREATE ROLE {left}_flights"),
    ] {
        diesel::sql_query(statement)
            .execute(&mut admin)
            .await
            .unwrap();
    }

    let db = TestDatabase::create().await;

    let named = |table: &str, column: &str| {
        format!("SELECT count(*) FROM {table} WHERE {column} LIKE '{left}%'")
    };
    assert_eq!(count(&mut admin, &named("pg_database", "datname")).await, 0);
    assert_eq!(count(&mut admin, &named("pg_roles", "rolname")).await, 0);
    assert_eq!(
        count(
            &mut admin,
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                db.name()
            )
        )
        .await,
        1,
        "the new one is there"
    );
}
