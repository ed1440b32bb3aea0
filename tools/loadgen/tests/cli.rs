//! The command line, as bench/run.py and people use it.

/// `loadgen --help` lists its commands; an unknown flag is a usage error (exit 2).
#[test]
fn the_binary_answers_help_and_refuses_unknown_flags() {
    flightmesh_testkit::assert_command_line(
        env!("CARGO_BIN_EXE_loadgen"),
        &["run", "verify", "broker"],
    );
}

/// The flags bench/run.py passes are accepted (a run with a bad value is refused before any
/// network call, so this needs no mesh).
#[test]
fn the_benchmarks_flags_are_known() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--scenario",
            "bookings",
            "--via",
            "grpc",
            "--concurrency",
            "16",
        ])
        .args(["--flights", "100", "--duration", "nonsense", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--duration"),
        "only the bad value is refused: {stderr}"
    );
}
