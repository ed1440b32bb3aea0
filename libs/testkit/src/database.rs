//! A fresh PostgreSQL database per test, with the production's per-service roles, and what
//! tests read from it.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::names::{orphaned, owned_name};

/// `FLIGHTMESH_TEST_PG_ADMIN_URL`: where tests create their databases.
pub const ADMIN_URL_VAR: &str = "FLIGHTMESH_TEST_PG_ADMIN_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The number a counting query (`SELECT count(*) FROM …`) answers on `conn`.
///
/// # Panics
/// If the query fails.
pub async fn count(conn: &mut AsyncPgConnection, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT ({query}) AS n"))
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
        .n
}

/// An outbox row (`bookings.outbox`, `flights.outbox`), as tests compare it with what was
/// published.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct StoredEvent {
    /// The event's id (the AMQP message id).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub event_id: String,
    /// e.g. `booking.created`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub event_type: String,
    /// The encoded protobuf, as published.
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    pub payload: Vec<u8>,
}

/// Where tests create their databases: [`ADMIN_URL_VAR`], or the superuser on 127.0.0.1:5432.
#[must_use]
pub fn admin_url() -> String {
    std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The server part of `admin` (an admin URL), with `database` as the database.
fn url_for(admin: &str, database: &str) -> String {
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{database}")
}

/// `admin` (an admin URL) with `user:password` as its credentials and `database` as its database.
fn url_as(admin: &str, user: &str, password: &str, database: &str) -> String {
    let (scheme, rest) = admin.split_once("://").unwrap_or(("postgres", admin));
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}/{database}")
}

/// The SQL an operator runs to give each service its own role and schema (docs/operations.md,
/// "Database roles"); every test database is set up with it.
pub const DATABASE_ROLES_SQL: &str = include_str!("../../db/sql/database-roles.sql");

/// A service that owns a schema, and so a database role of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// Schema `flights`.
    Flights,
    /// Schema `bookings`.
    Bookings,
    /// Schema `identity`.
    Gateway,
}

impl ServiceRole {
    /// Every service with a schema.
    pub const ALL: [Self; 3] = [Self::Flights, Self::Bookings, Self::Gateway];

    /// The service's name (the `<name>_role` / `<name>_password` variables of the SQL).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Flights => "flights",
            Self::Bookings => "bookings",
            Self::Gateway => "gateway",
        }
    }

    /// The schema it owns.
    #[must_use]
    pub fn schema(self) -> &'static str {
        match self {
            Self::Flights => "flights",
            Self::Bookings => "bookings",
            Self::Gateway => "identity",
        }
    }

    /// The prefix the one-process stack reads its variables with (`FLIGHTS_DATABASE_URL`, …).
    #[must_use]
    pub fn env_prefix(self) -> &'static str {
        match self {
            Self::Flights => "FLIGHTS_",
            Self::Bookings => "BOOKINGS_",
            Self::Gateway => "GATEWAY_",
        }
    }
}

/// `sql` with psql's `:"name"` (identifier) and `:'name'` (literal) variables replaced, quoted as
/// psql quotes them. Comment lines are dropped.
///
/// # Panics
/// When the SQL uses a variable `vars` does not give: the test setup and the file disagree.
#[must_use]
pub fn psql_substitute(sql: &str, vars: &[(&str, &str)]) -> String {
    let mut out = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for (name, value) in vars {
        out = out
            .replace(
                &format!(":\"{name}\""),
                &format!("\"{}\"", value.replace('"', "\"\"")),
            )
            .replace(
                &format!(":'{name}'"),
                &format!("'{}'", value.replace('\'', "''")),
            );
    }
    assert!(
        !out.contains(":\"") && !out.contains(":'"),
        "a psql variable the test setup does not give: {out}"
    );
    out
}

/// A database that exists for one test and is dropped (with its connections and its service
/// roles) when this value is.
pub struct TestDatabase {
    name: String,
    url: String,
    /// The server's admin URL (the superuser's, on its `postgres` database).
    admin: String,
    /// (role, password) per [`ServiceRole::ALL`] entry.
    roles: [(String, String); 3],
}

impl TestDatabase {
    /// Creates `fm_test_<pid>_<random>` on the test server (first dropping, with their roles, the
    /// databases of test runs that ended without dropping theirs), and in it the service roles
    /// and schemas of `libs/db/sql/database-roles.sql`: `<database>_flights` owns `flights`,
    /// `<database>_bookings` owns `bookings`, `<database>_gateway` owns `identity` (roles are
    /// cluster-wide: the names carry the database's so that tests never share one).
    ///
    /// # Panics
    /// When PostgreSQL is unreachable: the tests cannot run without it.
    pub async fn create() -> Self {
        Self::create_on(&admin_url()).await
    }

    /// As [`create`](Self::create), on the server whose admin URL is `admin` (a server of the
    /// test's own, say, that it may restart).
    ///
    /// # Panics
    /// When that server is unreachable.
    pub async fn create_on(admin: &str) -> Self {
        let name = owned_name(DATABASE_PREFIX);
        let mut conn = AsyncPgConnection::establish(admin)
            .await
            .unwrap_or_else(|err| {
                panic!("PostgreSQL must run for the tests ({ADMIN_URL_VAR}): {err}")
            });
        drop_orphans(&mut conn).await;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let url = url_for(admin, &name);
        let admin = admin.to_owned();
        let roles = ServiceRole::ALL.map(|service| {
            (
                format!("{name}_{}", service.name()),
                uuid::Uuid::new_v4().simple().to_string(),
            )
        });
        let database = Self {
            name,
            url,
            admin,
            roles,
        };
        database.create_roles().await;
        database
    }

    /// Runs the operators' SQL in this database, as the admin.
    async fn create_roles(&self) {
        let mut vars = vec![("database".to_owned(), self.name.clone())];
        for (service, (role, password)) in ServiceRole::ALL.iter().zip(&self.roles) {
            vars.push((format!("{}_role", service.name()), role.clone()));
            vars.push((format!("{}_password", service.name()), password.clone()));
        }
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let sql = psql_substitute(DATABASE_ROLES_SQL, &vars);
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database");
        // One simple-query batch: one implicit transaction, like psql --single-transaction.
        conn.batch_execute(&sql)
            .await
            .expect("create the service roles (libs/db/sql/database-roles.sql)");
    }

    /// The database's connection URL, as the admin (a superuser): for tests that look at or
    /// change every schema directly.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The role `service` connects as: owner of its schema, with no rights on the others.
    #[must_use]
    pub fn role(&self, service: ServiceRole) -> &str {
        &self.roles[Self::index(service)].0
    }

    /// The connection URL of `service`'s role.
    #[must_use]
    pub fn service_url(&self, service: ServiceRole) -> String {
        let (role, password) = &self.roles[Self::index(service)];
        url_as(&self.admin, role, password, &self.name)
    }

    fn index(service: ServiceRole) -> usize {
        ServiceRole::ALL
            .iter()
            .position(|s| *s == service)
            .unwrap_or_default()
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number a counting query (`SELECT count(*) FROM …`) answers on this database.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable or the query fails.
    pub async fn count(&self, query: &str) -> i64 {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database");
        count(&mut conn, query).await
    }

    /// Every event stored in `outbox` (a table such as `bookings.outbox`), oldest first.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable or the table does not exist.
    pub async fn stored_events(&self, outbox: &str) -> Vec<StoredEvent> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database");
        diesel::sql_query(format!(
            "SELECT event_id::text, event_type, payload FROM {outbox} ORDER BY id"
        ))
        .load(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("{outbox}: {err}"))
    }

    /// Kills every server backend connected to this database (what a database restart does to
    /// the services' pools) and waits until they are gone, so that their sockets are closed when
    /// this returns. Returns how many were terminated.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable.
    pub async fn terminate_backends(&self) -> usize {
        let mut admin = AsyncPgConnection::establish(&self.admin)
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
        let admin_url = self.admin.clone();
        // Drop runs outside async context (or inside a runtime that is shutting down): use a
        // private runtime on a plain thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = AsyncPgConnection::establish(&admin_url).await?;
                drop_database(&mut admin, &name)
                    .await
                    .map_err(|err| diesel::ConnectionError::BadConnection(err.to_string()))
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

const DATABASE_PREFIX: &str = "fm_test";

/// Drops database `name` and its service roles (`<name>_<service>`). The roles own nothing outside
/// the database (their schemas and grants go with it), so they can be dropped once it is gone.
/// Roles are cluster-wide: left behind, they would pile up.
async fn drop_database(
    admin: &mut AsyncPgConnection,
    name: &str,
) -> Result<(), diesel::result::Error> {
    let roles = ServiceRole::ALL
        .map(|service| format!("\"{name}_{}\"", service.name()))
        .join(", ");
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {roles}"),
    ] {
        diesel::sql_query(statement).execute(admin).await?;
    }
    Ok(())
}

/// Drops the test databases (and roles) of test runs that ended without dropping them. Best
/// effort: another test may be dropping the same one at the same moment.
async fn drop_orphans(admin: &mut AsyncPgConnection) {
    #[derive(diesel::QueryableByName)]
    struct Database {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let Ok(databases) = diesel::sql_query(
        "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'fm\\_test\\_%'",
    )
    .load::<Database>(admin)
    .await
    else {
        return;
    };
    for Database { datname } in databases {
        if orphaned(DATABASE_PREFIX, &datname) {
            eprintln!("dropping test database {datname}, left by a test run that was killed");
            let _ = drop_database(admin, &datname).await;
        }
    }
}

#[cfg(test)]
mod tests;
