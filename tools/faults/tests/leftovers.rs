//! What a fault test run stopped without its `Drop`s (Ctrl-C, SIGKILL) leaves is cleaned up: the
//! servers it started as daemons are removed by the next run, and its service processes die
//! with it (`Deployment`'s children run under `setpriv --pdeathsig`, tested in the library).

use std::process::Command;

use flightmesh_faults::{PrivatePostgres, PrivateRabbitMq, or_skip};
use flightmesh_testkit::ended_pid;

/// `pg_lsclusters`' rows, or why it cannot run.
fn clusters() -> Result<String, String> {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .map_err(|err| format!("pg_lsclusters: {err}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_cluster_left_by_a_killed_run_is_dropped_by_the_next_private_postgres() {
    let Some(listed) = or_skip("a private PostgreSQL", clusters()) else {
        return;
    };
    let version = listed
        .split_whitespace()
        .next()
        .expect("a cluster to take the version from")
        .to_owned();
    // What a killed run leaves: a cluster named for a process that is gone (not started: the
    // sweep goes by name, and a stopped one is dropped the same way).
    let left = format!("fm_faults_{}_left", ended_pid());
    let created = Command::new("pg_createcluster")
        .args([&version, &left, "--", "--auth=trust"])
        .output()
        .expect("pg_createcluster");
    assert!(created.status.success(), "{created:?}");
    assert!(clusters().unwrap().contains(&left));

    let next = PrivatePostgres::start().expect("the next cluster starts");
    let listed = clusters().unwrap();
    assert!(!listed.contains(&left), "the leftover is dropped: {listed}");
    assert!(
        listed.contains(next.cluster().split('/').nth(1).unwrap_or_default()),
        "the new one runs: {listed}"
    );
}

#[test]
fn a_rabbitmq_node_left_by_a_killed_run_is_removed_by_the_next_private_node() {
    // What a killed run leaves of a node that has stopped since: its directory.
    let left = std::env::temp_dir().join(format!("fmfaults_{}_left", ended_pid()));
    std::fs::create_dir_all(left.join("mnesia")).expect("a leftover directory");

    let Some(_next) = or_skip("a private RabbitMQ node", PrivateRabbitMq::start()) else {
        let _ = std::fs::remove_dir_all(&left);
        return;
    };
    assert!(!left.exists(), "{} is removed", left.display());
}
