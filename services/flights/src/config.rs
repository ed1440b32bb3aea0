//! The flights service's configuration, read once from the environment.

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::{ConfigError, Env, Var};
use flightmesh_runtime::host::HostConfig;

/// gRPC and admin addresses with this service's default ports.
const HOST_VARS: [Var; 3] = HostConfig::vars("0.0.0.0:50051", "0.0.0.0:51051");

/// `MIGRATE_ON_START`.
const MIGRATE_ON_START: Var = Var::new(
    "MIGRATE_ON_START",
    "true",
    "Apply pending migrations at start (Helm runs them in a hook Job and sets this to false)",
);

/// Everything the flights service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
    /// PostgreSQL.
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
}

impl Config {
    /// Every variable the service reads, for docs and checks.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = HOST_VARS.to_vec();
        vars.extend_from_slice(DbConfig::VARS);
        vars.push(MIGRATE_ON_START);
        vars
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
            db: DbConfig::from_env(env)?,
            migrate_on_start: env.get(&MIGRATE_ON_START)?,
        })
    }
}
