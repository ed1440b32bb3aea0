//! Names that no other test, or test run, uses; and which of them a killed run left behind.

/// A name nobody else uses: `{prefix}_{32 hex digits}`.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A [`unique_name`] that also names this process: `{prefix}_{pid}_{32 hex digits}`. For what
/// outlives a test run stopped without its `Drop`s (Ctrl-C, SIGKILL) — a database, a server
/// started as a daemon — so that a later run can tell, with [`orphaned`], what such a run left
/// from what a parallel run still uses.
#[must_use]
pub fn owned_name(prefix: &str) -> String {
    unique_name(&format!("{prefix}_{}", std::process::id()))
}

/// The pid of a process that has just ended: what [`orphaned`] is tested with.
///
/// # Panics
/// When `true` cannot be run.
#[must_use]
pub fn ended_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("`true` runs");
    let pid = child.id();
    child.wait().expect("`true` ends");
    pid
}

/// Whether `name` is an [`owned_name`] of `prefix` made by a process that no longer runs.
#[must_use]
pub fn orphaned(prefix: &str, name: &str) -> bool {
    let pid = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| {
        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_ended_processes_are_orphaned() {
        assert!(
            !orphaned("fm_test", &owned_name("fm_test")),
            "this run's own"
        );
        let ended = ended_pid();
        assert!(orphaned("fm_test", &format!("fm_test_{ended}_0a1b")));
        assert!(
            !orphaned("fm_test", "fm_test_1_0a1b"),
            "pid 1 runs: a parallel run's"
        );
        assert!(
            !orphaned("fm_test", "fm_test_3f2a9c0e7b"),
            "no pid: not ours to remove"
        );
        assert!(!orphaned("fm_test", &format!("main_{ended}_0a1b")));
    }
}
