//! The machine's service tools (`pg_createcluster`, `rabbitmqctl`, …), run to completion.

use std::process::Command;

/// What `program` printed, or why it could not run or failed.
pub(crate) fn output(
    program: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .map_err(|err| format!("{program} is not available ({err})"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
