//! The servers a scenario starts as daemons (a PostgreSQL cluster, a RabbitMQ node) outlive a
//! test run stopped without its `Drop`s (Ctrl-C, SIGKILL). Their names carry the test process's
//! pid, so that the next run can tell one whose run is gone, and remove it, from one a parallel
//! run is still using.

use std::path::Path;

/// `<prefix>_<pid>_<unique>`, `pid` being this process's.
pub(crate) fn owned_name(prefix: &str) -> String {
    flightmesh_testkit::unique_name(&format!("{prefix}_{}", std::process::id()))
}

/// Whether `name` is an [`owned_name`] of `prefix` made by a process that no longer runs.
pub(crate) fn orphaned(prefix: &str, name: &str) -> bool {
    let pid = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: one that just ended.
    fn ended_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn only_names_of_ended_processes_are_orphaned() {
        assert!(
            !orphaned("fm_faults", &owned_name("fm_faults")),
            "this run's own"
        );
        let ended = ended_pid();
        assert!(orphaned("fm_faults", &format!("fm_faults_{ended}_0a1b")));
        assert!(
            !orphaned("fm_faults", "fm_faults_1_0a1b"),
            "pid 1 runs: a parallel run's"
        );
        assert!(
            !orphaned("fm_faults", "fm_faults_3f2a9c0e7b"),
            "no pid: not ours to remove"
        );
        assert!(!orphaned("fm_faults", &format!("main_{ended}_0a1b")));
    }
}
