//! The command line, as bench/run.py and people use it.

flightmesh_testkit::command_line_test!("loadgen", ["run", "verify", "broker"]);

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
