//! PostgreSQL for flightmesh services.
//!
//! - [`DbConfig`] reads `DATABASE_URL` and the pool settings.
//! - [`pool`] builds a diesel-async bb8 pool that checks every connection it hands out (the
//!   analogue of SQLAlchemy's `pool_pre_ping`): after a database restart or a killed backend the
//!   next checkout replaces the dead connection, so a service never needs restarting. The check
//!   is the connection's socket state by default (free), or a `SELECT 1` round trip
//!   (`DATABASE_CHECKOUT_CHECK=query`) where middleboxes may silently drop idle connections.
//! - [`SharedConnections`] are a few connections that many concurrent single-statement
//!   transactions share, so that tokio-postgres pipelines them (the bookings statement). Their
//!   statements go to tokio-postgres directly, prepared once per connection (ADR 0015).
//! - [`read`] runs a read and retries it once on another connection if its connection turns
//!   out to be dead (the check on checkout can race with the server closing it).
//! - [`migrate`] runs a service's embedded migrations (its own, and shared ones such as the
//!   outbox's) in its own schema, under an advisory lock so that replicas starting together do
//!   not race.
//! - [`prepared`] builds raw SQL that is prepared once per connection (`sql_query` is re-parsed
//!   every time).
//! - [`DbError`] tells a dependency outage (→ gRPC UNAVAILABLE, HTTP 503) from a real failure, and
//!   [`constraint_violation`] turns SQLSTATE 23505/23503 into something a domain error can match.

mod error;
mod prepared;
mod shared;

use std::time::Duration;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::result::DatabaseErrorKind;
/// diesel's query error (what `?` on a query gives).
pub use diesel::result::Error as DieselError;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use flightmesh_runtime::config::{Reader, Secret, Var};

use error::is_connection_failure;
pub use error::{DbError, Violation, constraint_violation};
pub use prepared::{Bind, Binds, Prepared, prepared};
pub use shared::{JsonbText, SharedConn, SharedConnections};

/// A pool of verified PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;
/// A connection checked out of a [`PgPool`].
pub type PgConn<'a> = PooledConnection<'a, AsyncPgConnection>;

/// `DATABASE_URL`.
pub const DATABASE_URL: Var = Var::new(
    "DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/flightmesh",
)
.doc("PostgreSQL connection URL")
.secret();
/// `DATABASE_MAX_CONNECTIONS`.
pub const DATABASE_MAX_CONNECTIONS: Var =
    Var::new("DATABASE_MAX_CONNECTIONS", "10").doc("Pool size (connections per replica)");
/// `DATABASE_CONNECT_TIMEOUT`.
pub const DATABASE_CONNECT_TIMEOUT: Var = Var::new("DATABASE_CONNECT_TIMEOUT", "3s")
    .doc("How long a request waits for a connection before failing with 503");

/// `DATABASE_CHECKOUT_CHECK`.
pub const DATABASE_CHECKOUT_CHECK: Var = Var::new("DATABASE_CHECKOUT_CHECK", "socket").doc(
    "How a pooled connection is checked before use: `socket` (closed or broken? free) or `query` (a `SELECT 1` round trip)",
);

/// `MIGRATE_ON_START`, as the services that run their migrations at start declare it (the gateway
/// words it for its `identity` schema).
pub const MIGRATE_ON_START: Var = Var::new("MIGRATE_ON_START", "true")
    .doc("Apply pending migrations at start (Helm runs them in a hook Job and sets this to false)");

flightmesh_runtime::word_enum! {
    /// How the pool checks a connection before handing it out.
    pub enum CheckoutCheck {
        /// The socket is open and no transaction was left broken: no round trip. A backend that
        /// was killed or a server that restarted closes the socket, which this sees.
        Socket = "socket",
        /// `SELECT 1` on every checkout: also catches connections a middlebox dropped silently.
        Query = "query",
    }
}

/// Database settings shared by every service that owns a schema.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Connection URL (may hold a password).
    pub url: Secret<String>,
    /// Pool size.
    pub max_connections: u32,
    /// Wait for a connection at most this long.
    pub connect_timeout: Duration,
    /// How connections are checked before use.
    pub checkout_check: CheckoutCheck,
}

impl DbConfig {
    /// Reads `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS`, `DATABASE_CONNECT_TIMEOUT` and
    /// `DATABASE_CHECKOUT_CHECK`.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let url = r.get(DATABASE_URL);
        let max_connections: u32 = r.get(DATABASE_MAX_CONNECTIONS);
        r.ensure(
            &DATABASE_MAX_CONNECTIONS,
            max_connections > 0,
            "must be at least 1",
        );
        Self {
            url,
            max_connections,
            connect_timeout: r.duration(DATABASE_CONNECT_TIMEOUT),
            checkout_check: r.get(DATABASE_CHECKOUT_CHECK),
        }
    }
}

flightmesh_runtime::env_config!(DbConfig);

/// A pool that checks connections on checkout and waits at most `connect_timeout` for one.
/// It connects lazily: building it never fails because the database is down.
#[must_use]
pub fn pool(config: &DbConfig) -> PgPool {
    let mut manager_config = ManagerConfig::default();
    // A connection that fails the check is dropped and replaced before anyone uses it.
    manager_config.recycling_method = match config.checkout_check {
        CheckoutCheck::Query => RecyclingMethod::Verified,
        CheckoutCheck::Socket => {
            RecyclingMethod::CustomFunction(Box::new(|conn: &mut AsyncPgConnection| {
                let broken = conn.is_broken();
                Box::pin(async move {
                    if broken {
                        Err(DieselError::DatabaseError(
                            DatabaseErrorKind::ClosedConnection,
                            Box::new("connection closed".to_owned()),
                        ))
                    } else {
                        Ok(())
                    }
                })
            }))
        }
    };
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        config.url.expose().clone(),
        manager_config,
    );
    Pool::builder()
        .max_size(config.max_connections)
        .min_idle(Some(1))
        .test_on_check_out(true)
        .connection_timeout(config.connect_timeout)
        .retry_connection(true)
        .build_unchecked(manager)
}

/// Runs the read-only `query` on a pooled connection. If the connection turns out to be gone
/// (a terminated backend, a database that restarted since its last use: the server closed the
/// socket, but the checkout check ran before the client noticed), it is dropped and `query` runs
/// once more on another one. Only for reads: a write that failed on a dying connection may or
/// may not have committed.
pub async fn read<T, Q>(pool: &PgPool, mut query: Q) -> Result<T, DbError>
where
    for<'c> Q:
        AsyncFnMut(&'c mut AsyncPgConnection) -> Result<T, DieselError> + ReadQuery<'c, T> + Send,
{
    let mut conn = pool.get().await?;
    match query(&mut conn).await {
        Err(err) if is_connection_failure(&err) => {
            // The pool sees the connection is broken when it comes back and discards it.
            drop(conn);
            let mut conn = pool.get().await?;
            Ok(query(&mut conn).await?)
        }
        answered => Ok(answered?),
    }
}

/// The future of a [`read`] query is `Send`: spelled out because an `AsyncFnMut` bound cannot
/// say it (the same workaround as diesel-async's `transaction`).
pub trait ReadQuery<'c, T>:
    FnMut(&'c mut AsyncPgConnection) -> <Self as ReadQuery<'c, T>>::Fut
{
    /// The query's future.
    type Fut: Future<Output = Result<T, DieselError>> + Send;
}

impl<'c, T, Q, Fut> ReadQuery<'c, T> for Q
where
    Q: FnMut(&'c mut AsyncPgConnection) -> Fut,
    Fut: Future<Output = Result<T, DieselError>> + Send,
{
    type Fut = Fut;
}

/// One round trip, for readiness checks.
pub async fn ping(pool: &PgPool) -> Result<(), DbError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// The database's health for readiness checks, on a connection of its own: a saturated pool
/// (every connection busy, requests queued for one) says nothing about the database, and a
/// readiness check that queued behind it would take the service out of its Service exactly
/// when load peaks. One extra connection per process; reconnected after any failure.
pub struct DbHealth {
    url: Secret<String>,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<AsyncPgConnection>>,
}

impl DbHealth {
    /// A health check for `config`'s database; connects on first use, waiting at most
    /// `connect_timeout` for the connection and for each `SELECT 1`.
    #[must_use]
    pub fn new(config: &DbConfig) -> Self {
        Self {
            url: config.url.clone(),
            timeout: config.connect_timeout,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// One `SELECT 1` on the dedicated connection (established first if needed). A kept
    /// connection that fails is replaced and asked once more at once: a backend that was
    /// terminated (a failover, `pg_terminate_backend`) is not a database that is down.
    pub async fn check(&self) -> Result<(), DbError> {
        let mut slot = self.conn.lock().await;
        let reused = slot.is_some();
        match self.select_one(&mut slot).await {
            Err(DbError::Unavailable(_)) if reused => self.select_one(&mut slot).await,
            answered => answered,
        }
    }

    /// `SELECT 1` on the connection in `slot`, connecting first if it is empty; a failure
    /// empties it.
    async fn select_one(&self, slot: &mut Option<AsyncPgConnection>) -> Result<(), DbError> {
        let conn = match slot {
            Some(conn) => conn,
            None => {
                let established = tokio::time::timeout(
                    self.timeout,
                    AsyncPgConnection::establish(self.url.expose()),
                )
                .await
                .map_err(|elapsed| DbError::Unavailable(Box::new(elapsed)))?
                .map_err(|err| DbError::Unavailable(Box::new(err)))?;
                slot.insert(established)
            }
        };
        let answered =
            tokio::time::timeout(self.timeout, diesel::sql_query("SELECT 1").execute(conn)).await;
        match answered {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => {
                *slot = None;
                Err(DbError::Unavailable(Box::new(err)))
            }
            Err(elapsed) => {
                *slot = None;
                Err(DbError::Unavailable(Box::new(elapsed)))
            }
        }
    }
}

/// Applies `sources` (the service's own migrations and shared ones, merged in version order) in
/// `schema` (created if missing and the role may; a service's own role
/// finds it created for it by `libs/db/sql/database-roles.sql`), recording them in
/// `{schema}.__diesel_schema_migrations` so that services sharing a database never see each
/// other's migrations. Returns the versions applied now.
pub async fn migrate(
    url: &Secret<String>,
    schema: &str,
    sources: &'static [EmbeddedMigrations],
) -> Result<Vec<String>, DbError> {
    let failed = |reason: String| DbError::Migration {
        schema: schema.to_owned(),
        reason,
    };
    if !schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(failed("schema names are lower-case letters and '_'".into()));
    }
    let mut conn = AsyncPgConnection::establish(url.expose())
        .await
        .map_err(|err| DbError::Unavailable(Box::new(err)))?;
    // Replicas starting together queue here instead of applying the same migration twice.
    diesel::sql_query(format!(
        "SELECT pg_advisory_lock(hashtext('flightmesh.migrations.{schema}'))"
    ))
    .execute(&mut conn)
    .await?;
    // A service's own role owns its schema and may not create schemas (libs/db/sql/
    // database-roles.sql): CREATE SCHEMA IF NOT EXISTS would fail even for an existing schema
    // (the database privilege is checked first), so create it only when it is missing.
    let existing = diesel::sql_query("SELECT 1 AS one FROM pg_namespace WHERE nspname = $1")
        .bind::<diesel::sql_types::Text, _>(schema)
        .load::<One>(&mut conn)
        .await?;
    if existing.is_empty() {
        diesel::sql_query(format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .map_err(|err| {
                failed(format!(
                    "schema {schema} does not exist and this role cannot create it ({err}); \
                     create it owned by the service's role (libs/db/sql/database-roles.sql)"
                ))
            })?;
    }
    // Migrating means creating in the schema (diesel's bookkeeping table first): say which role
    // lacks what, rather than PostgreSQL's "no schema has been selected to create in".
    let may_create =
        diesel::sql_query("SELECT 1 AS one WHERE has_schema_privilege(current_user, $1, 'CREATE')")
            .bind::<diesel::sql_types::Text, _>(schema)
            .load::<One>(&mut conn)
            .await?;
    if may_create.is_empty() {
        return Err(failed(format!(
            "this role may not create objects in schema {schema}: connect as the role that owns \
             it (libs/db/sql/database-roles.sql)"
        )));
    }
    // Everything the migrations create lands in the schema, diesel's own
    // __diesel_schema_migrations table included (it is created unqualified).
    diesel::sql_query(format!("SET search_path TO {schema}"))
        .execute(&mut conn)
        .await?;

    // diesel's harness is synchronous: it runs on a blocking thread, from where it drives the
    // connection through this runtime's handle (a runtime of one thread cannot block in place).
    let (applied, mut conn) = tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let applied = harness
            .run_pending_migrations(Sources(sources))
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|err| err.to_string());
        (applied, harness.into_inner())
    })
    .await
    .map_err(|err| failed(format!("the migration task failed: {err}")))?;
    let applied = applied.map_err(failed);
    // Session-level lock: released explicitly, and by the server if the connection dies.
    diesel::sql_query(format!(
        "SELECT pg_advisory_unlock(hashtext('flightmesh.migrations.{schema}'))"
    ))
    .execute(&mut conn)
    .await?;
    let applied = applied?;
    if !applied.is_empty() {
        tracing::info!(schema, versions = ?applied, "migrations applied");
    }
    Ok(applied)
}

/// Several embedded migration sets as one: diesel sorts what is pending by version, so a shared
/// migration runs where its version puts it among the service's own. A version in two sets is
/// refused: diesel would keep one of the two and drop the other silently.
struct Sources<'a>(&'a [EmbeddedMigrations]);

impl MigrationSource<Pg> for Sources<'_> {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        let mut all: Vec<Box<dyn Migration<Pg>>> = Vec::new();
        for source in self.0 {
            for migration in MigrationSource::<Pg>::migrations(source)? {
                let version = migration.name().version();
                if all.iter().any(|known| known.name().version() == version) {
                    return Err(format!("migration version {version} is in two sources").into());
                }
                all.push(migration);
            }
        }
        Ok(all)
    }
}

/// Creates the database named in `url` if it does not exist (the dev stack's first run).
/// Connects to the `postgres` database of the same server to do so.
pub async fn ensure_database(url: &Secret<String>) -> Result<bool, DbError> {
    let url = url.expose();
    let (server, name) = url
        .rsplit_once('/')
        .ok_or_else(|| DbError::Unavailable("DATABASE_URL has no database name".into()))?;
    let name = name.split('?').next().unwrap_or(name);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(DbError::Unavailable(
            format!("database name {name:?} must be letters, digits and '_'").into(),
        ));
    }
    let mut admin = AsyncPgConnection::establish(&format!("{server}/postgres"))
        .await
        .map_err(|err| DbError::Unavailable(Box::new(err)))?;
    let exists: Vec<i32> = diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load::<One>(&mut admin)
        .await?
        .into_iter()
        .map(|row| row.one)
        .collect();
    if !exists.is_empty() {
        return Ok(false);
    }
    match diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
    {
        Ok(_) => Ok(true),
        // Created meanwhile by someone else: fine.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    one: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: EmbeddedMigrations =
        diesel_migrations::embed_migrations!("tests/support/migrations");

    #[test]
    fn merged_sources_keep_every_migration_and_refuse_a_version_in_two() {
        let one = MigrationSource::<Pg>::migrations(&Sources(&[PROBE])).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name().version().to_string(), "20260101000001");

        let err = MigrationSource::<Pg>::migrations(&Sources(&[PROBE, PROBE]))
            .err()
            .expect("a version in two sources is refused");
        assert_eq!(
            err.to_string(),
            "migration version 20260101000001 is in two sources"
        );
    }
}
