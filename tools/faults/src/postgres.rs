//! A PostgreSQL server of a scenario's own, so that restarting PostgreSQL stops nobody else's
//! connections: a cluster made with Debian's `pg_createcluster` beside the machine's (same
//! version), on a free port, listening on loopback only with trust authentication, dropped with
//! this value (or by the next run's [`PrivatePostgres::start`], if its run was killed).

use crate::command::output;
use flightmesh_testkit::{orphaned, owned_name};

const PREFIX: &str = "fm_faults";

/// See the module docs.
pub struct PrivatePostgres {
    version: String,
    name: String,
    port: u16,
}

impl PrivatePostgres {
    /// Creates and starts the cluster, first dropping any that a killed test run left. `Err`
    /// (the reason) where PostgreSQL is not managed by Debian's cluster tools.
    pub fn start() -> Result<Self, String> {
        let listed = output("pg_lsclusters", &["--no-header"], &[])?;
        for line in listed.lines() {
            if let [version, name, ..] = line.split_whitespace().collect::<Vec<_>>()[..]
                && orphaned(PREFIX, name)
            {
                eprintln!("dropping cluster {version}/{name}, left by a test run that was killed");
                // A leftover that will not go is no reason to refuse a new cluster.
                if let Err(err) = output("pg_dropcluster", &["--stop", version, name], &[]) {
                    eprintln!("warning: could not drop cluster {version}/{name}: {err}");
                }
            }
        }
        let version = listed
            .split_whitespace()
            .next()
            .ok_or_else(|| format!("no PostgreSQL cluster to take the version from: {listed}"))?
            .to_owned();
        let port = crate::deploy::free_port();
        let cluster = Self {
            version,
            name: owned_name(PREFIX),
            port,
        };
        let port = port.to_string();
        output(
            "pg_createcluster",
            &[
                &cluster.version,
                &cluster.name,
                "--port",
                &port,
                "--start",
                // The deployment's replicas hold up to 10 connections each, and the checks more.
                "-o",
                "max_connections=200",
                "--",
                "--auth=trust",
            ],
            &[],
        )?;
        Ok(cluster)
    }

    /// The superuser's URL, on the `postgres` database.
    #[must_use]
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Restarts the server (a fast shutdown: every connection is cut).
    ///
    /// # Panics
    /// If `pg_ctlcluster` fails.
    pub fn restart(&self) {
        output(
            "pg_ctlcluster",
            &[
                "--skip-systemctl-redirect",
                &self.version,
                &self.name,
                "restart",
            ],
            &[],
        )
        .unwrap_or_else(|err| panic!("restart {}: {err}", self.name));
    }

    /// `version/name`, as the cluster tools name it.
    #[must_use]
    pub fn cluster(&self) -> String {
        format!("{}/{}", self.version, self.name)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Err(err) = output(
            "pg_dropcluster",
            &["--stop", &self.version, &self.name],
            &[],
        ) {
            eprintln!("warning: could not drop cluster {}: {err}", self.cluster());
        }
    }
}
