//! A binary's command line: `--help` and an unknown flag.

/// Runs `binary --help` (it must succeed and list every one of `commands`) and
/// `binary --no-such-flag` (it must exit 2 naming the flag).
///
/// # Panics
/// When the binary does not behave so, or cannot be run.
pub fn assert_command_line(binary: &str, commands: &[&str]) {
    let run = |arg: &str| {
        std::process::Command::new(binary)
            .arg(arg)
            .output()
            .unwrap_or_else(|err| panic!("{binary}: {err}"))
    };
    let help = run("--help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{binary} --help: {help:?}");
    for command in commands {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{binary} --help does not list {command}:\n{text}"
        );
    }
    let unknown = run("--no-such-flag");
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "{binary} --no-such-flag: {unknown:?}"
    );
    assert!(error.contains("--no-such-flag"), "{binary}: {error}");
}

/// The test every binary has: `--help` lists its `commands`; an unknown flag is a usage error
/// (exit 2). `bin` is the binary's name in its crate, as in `CARGO_BIN_EXE_<bin>`.
#[macro_export]
macro_rules! command_line_test {
    ($bin:literal, [$($command:literal),+ $(,)?]) => {
        #[test]
        fn the_binary_answers_help_and_refuses_unknown_flags() {
            $crate::assert_command_line(env!(concat!("CARGO_BIN_EXE_", $bin)), &[$($command),+]);
        }
    };
}
