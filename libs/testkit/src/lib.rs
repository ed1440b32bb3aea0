//! Test support shared by every crate's integration tests.
//!
//! - [`TestDatabase`]: a fresh, uniquely named PostgreSQL database per test, dropped afterwards.
//! - [`TcpProxy`]: a TCP relay the test can cut and restore, to simulate a dependency outage
//!   (database, broker) without stopping the shared server other tests use.
//! - [`unique_name`]: a collision-free name for vhosts, queues, key prefixes.

mod proxy;

pub use proxy::TcpProxy;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// `FLIGHTMESH_TEST_PG_ADMIN_URL`: where tests create their databases.
pub const ADMIN_URL_VAR: &str = "FLIGHTMESH_TEST_PG_ADMIN_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A name nobody else uses: `{prefix}_{32 hex digits}`.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn admin_url() -> String {
    std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The server part of the admin URL, with `database` as the database.
fn url_for(database: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

/// A database that exists for one test and is dropped (with its connections) when this value is.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `fm_test_<random>` on the test server.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable: the tests cannot run without it.
    pub async fn create() -> Self {
        let name = unique_name("fm_test");
        let mut admin = AsyncPgConnection::establish(&admin_url())
            .await
            .unwrap_or_else(|err| {
                panic!("PostgreSQL must run for the tests ({ADMIN_URL_VAR}): {err}")
            });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = url_for(&name);
        Self { name, url }
    }

    /// The database's connection URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills every server backend connected to this database (what a database restart does to
    /// the services' pools) and waits until they are gone, so that their sockets are closed when
    /// this returns. Returns how many were terminated.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable.
    pub async fn terminate_backends(&self) -> usize {
        let mut admin = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect to PostgreSQL");
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let terminated: Vec<i32> = diesel::sql_query(format!(
            // Materialized first: a filter next to pg_terminate_backend could be evaluated after it.
            "WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()) \
             SELECT pid FROM victims WHERE pg_terminate_backend(pid)",
            self.name
        ))
        .load::<Pid>(&mut admin)
        .await
        .expect("terminate backends")
        .into_iter()
        .map(|row| row.pid)
        .collect();
        // pg_terminate_backend only signals; wait until those backends exited (and closed their
        // sockets). New connections the pools open meanwhile are left alone.
        let pids = terminated
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !terminated.is_empty() && std::time::Instant::now() < deadline {
            let left = diesel::sql_query(format!(
                "SELECT pid FROM pg_stat_activity WHERE pid IN ({pids})"
            ))
            .load::<Pid>(&mut admin)
            .await
            .expect("list backends");
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        terminated.len()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context (or inside a runtime that is shutting down): use a
        // private runtime on a plain thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = AsyncPgConnection::establish(&admin_url()).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(drop)
                    .map_err(|err| diesel::ConnectionError::BadConnection(err.to_string()))
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
