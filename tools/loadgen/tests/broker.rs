//! `loadgen broker` against the local RabbitMQ, with the flags bench/run.py passes: the
//! pipeline's pattern alone runs to the end (every message confirmed and consumed, acked in
//! batches), and an ack batch the prefetch could never fill is refused before any publish. The
//! run declares its own exchange and queue (named by its process id) and deletes them.

use serde_json::Value;

fn broker(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("broker")
        .args(["--messages", "200", "--batch", "50", "--json"])
        .args(args)
        .output()
        .expect("loadgen runs")
}

#[test]
fn the_pipelines_pattern_alone_publishes_and_consumes_every_message() {
    let output = broker(&["--pipelined-only", "--prefetch", "32", "--ack-batch", "16"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rates: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|err| panic!("JSON rates ({err}): {stdout}"));
    assert_eq!(
        rates["publish_confirm_each_per_s"],
        Value::Null,
        "no one-at-a-time phase: {rates}"
    );
    for rate in ["publish_confirm_batched_per_s", "consume_ack_per_s"] {
        assert!(
            rates[rate].as_f64().is_some_and(|r| r > 0.0),
            "{rate}: {rates}"
        );
    }
}

#[test]
fn an_ack_batch_beyond_the_prefetch_is_refused() {
    let output = broker(&["--prefetch", "8", "--ack-batch", "16"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot exceed the prefetch"),
        "says why: {stderr}"
    );
}
