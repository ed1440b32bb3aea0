//! Shared by the database tests.

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::Env;
use flightmesh_testkit::TestDatabase;

/// The settings of a service using `db`, with `settings` (variable, value) on top of the defaults.
pub fn config(db: &TestDatabase, settings: &[(&str, &str)]) -> DbConfig {
    let url = ("DATABASE_URL", db.url());
    DbConfig::from_env(&Env::from_pairs(
        std::iter::once(url).chain(settings.iter().copied()),
    ))
    .unwrap()
}
