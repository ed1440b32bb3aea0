//! Shared connections: many concurrent statements on a few connections, each answered on its own,
//! and a connection the server closed replaced before the next statement.

use std::collections::HashSet;
use std::time::Duration;

use flightmesh_db::{DbError, SharedConnections};
use flightmesh_testkit::TestDatabase;

mod support;

struct Answer {
    n: i32,
    pid: i32,
}

/// `n` back from the server, with the backend that answered; `n = 0` divides by zero.
async fn ask(shared: &SharedConnections, n: i32) -> Result<Answer, DbError> {
    let conn = shared.get().await?;
    let rows = conn
        .query(
            "SELECT $1::int + 0 * (1 / $1::int) AS n, pg_backend_pid() AS pid",
            &[&n],
        )
        .await?;
    let row = rows.first().expect("one row");
    Ok(Answer {
        n: row.get("n"),
        pid: row.get("pid"),
    })
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_statements_share_two_backends_and_each_gets_its_own_answer() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 2);
    let answers = futures::future::join_all((1..=200).map(|n| ask(&shared, n * 10))).await;
    let mut backends = HashSet::new();
    for (n, answer) in (1..=200).zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(answer.n, n * 10);
        backends.insert(answer.pid);
    }
    assert_eq!(backends.len(), 2, "{backends:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_statement_leaves_the_ones_pipelined_with_it_answered() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    let answers = futures::future::join_all((0..40).map(|i| {
        let n = if i % 4 == 0 { 0 } else { i * 10 };
        ask(&shared, n)
    }))
    .await;
    let mut backends = HashSet::new();
    for (i, answer) in (0..40).zip(answers) {
        if i % 4 == 0 {
            let err = answer.err().expect("division by zero fails");
            assert!(matches!(err, DbError::Query(_)), "{err:?}");
        } else {
            let answer = answer.unwrap();
            assert_eq!(answer.n, i * 10);
            backends.insert(answer.pid);
        }
    }
    // A statement's own error keeps the connection.
    backends.insert(ask(&shared, 10).await.unwrap().pid);
    assert_eq!(backends.len(), 1, "{backends:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_the_server_terminated_is_replaced_before_the_next_statement() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    let before = ask(&shared, 10).await.unwrap().pid;
    assert_eq!(db.terminate_backends().await, 1);
    // The client reads the closed socket on its own; once it has, nothing fails.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = ask(&shared, 20).await.unwrap();
    assert_eq!(after.n, 20);
    assert_ne!(after.pid, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_that_meets_a_dead_connection_is_unavailable_and_the_next_reconnects() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    for round in 0..10 {
        let before = ask(&shared, 10).await.unwrap().pid;
        assert_eq!(db.terminate_backends().await, 1, "round {round}");
        // Right after the kill: answered on a new connection, or failed as a dependency outage
        // (503), never as a query error.
        match ask(&shared, 20).await {
            Ok(answer) => assert_ne!(answer.pid, before, "round {round}"),
            Err(err) => assert!(matches!(err, DbError::Unavailable(_)), "{err:?}"),
        }
        let next = ask(&shared, 30).await.unwrap();
        assert_eq!(next.n, 30);
        assert_ne!(next.pid, before, "round {round}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_statement_is_prepared_once_per_connection_however_many_callers_race_to_it() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    // Fifty callers meet the statement unprepared at once: the copies prepared meanwhile close.
    let answers = futures::future::join_all((1..=50).map(|n| ask(&shared, n))).await;
    assert!(answers.into_iter().all(|answer| answer.is_ok()));
    let conn = shared.get().await.unwrap();
    let rows = conn
        .query(
            "SELECT count(*) AS prepared FROM pg_prepared_statements",
            &[],
        )
        .await
        .unwrap();
    // `ask`'s statement and this one.
    assert_eq!(rows[0].get::<_, i64>("prepared"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn json_text_is_bound_as_jsonb() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    let conn = shared.get().await.unwrap();
    let json = r#"{"total": "199.50", "pet": true}"#;
    let rows = conn
        .query(
            "SELECT $1::jsonb ->> 'total' AS total, jsonb_typeof($1::jsonb -> 'pet') AS pet",
            &[&flightmesh_db::JsonbText(json)],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>("total"), "199.50");
    assert_eq!(rows[0].get::<_, &str>("pet"), "boolean");
}

#[tokio::test(flavor = "current_thread")]
async fn a_value_that_does_not_fit_its_parameter_is_a_query_error_and_keeps_the_connection() {
    let db = TestDatabase::create().await;
    let shared = SharedConnections::new(&support::config(&db, &[]), 1);
    let before = ask(&shared, 10).await.unwrap().pid;
    let conn = shared.get().await.unwrap();
    // Text for an int parameter: refused before anything is sent.
    let err = conn
        .query("SELECT $1::int AS n", &[&"ten"])
        .await
        .map_err(DbError::from)
        .expect_err("a text value for an int parameter");
    assert!(matches!(err, DbError::Query(_)), "{err:?}");
    drop(conn);
    assert_eq!(ask(&shared, 20).await.unwrap().pid, before);
}
