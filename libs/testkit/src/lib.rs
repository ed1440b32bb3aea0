//! Test support shared by every crate's integration tests.
//!
//! - [`TestDatabase`]: a fresh, uniquely named PostgreSQL database per test, with one login role
//!   per service owning that service's schema (the production setup of
//!   `libs/db/sql/database-roles.sql`), dropped afterwards with its roles.
//! - [`TcpProxy`]: a TCP relay the test can cut and restore, to simulate a dependency outage
//!   (database, broker) without stopping the shared server other tests use.
//! - [`unique_name`]: a collision-free name for vhosts, queues, key prefixes; [`owned_name`] and
//!   [`orphaned`] for what a killed test run would leave behind (a database, a daemon).
//! - [`assert_command_line`] (and [`command_line_test!`], the test that calls it for a crate's
//!   binary): a binary's `--help` and its answer to an unknown flag.

mod command_line;
mod database;
mod names;
mod proxy;

pub use command_line::assert_command_line;
pub use database::{
    ADMIN_URL_VAR, DATABASE_ROLES_SQL, ServiceRole, StoredEvent, TestDatabase, admin_url, count,
    psql_substitute,
};
pub use names::{ended_pid, orphaned, owned_name, unique_name};
pub use proxy::TcpProxy;
