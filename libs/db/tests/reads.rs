//! A read whose pooled connection died since its last use (the server closed it, the client has
//! not noticed yet) is answered on another connection instead of failing.

use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;
use flightmesh_testkit::TestDatabase;

mod support;

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = Integer)]
    one: i32,
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_right_after_terminated_backends_succeed() {
    let db = TestDatabase::create().await;
    let pool = flightmesh_db::pool(&support::config(&db, &[("DATABASE_MAX_CONNECTIONS", "4")]));
    for round in 0..10 {
        // Four idle connections in the pool, then every backend killed at once.
        let held: Vec<_> = four_connections(&pool).await;
        drop(held);
        assert!(db.terminate_backends().await >= 1, "round {round}");
        for _ in 0..4 {
            let one = flightmesh_db::read(&pool, async |conn| {
                diesel::sql_query("SELECT 1 AS one")
                    .get_result::<One>(conn)
                    .await
            })
            .await;
            assert_eq!(one.map(|row| row.one).ok(), Some(1), "round {round}");
        }
    }
}

async fn four_connections(pool: &flightmesh_db::PgPool) -> Vec<flightmesh_db::PgConn<'_>> {
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await.unwrap());
    }
    held
}
