//! A burst of logins cannot grow the gateway's memory without bound (ADR 0011): Argon2 work holds
//! one of `PASSWORD_HASH_CONCURRENCY` permits (19 MiB each) and the logins beyond them answer 503
//! with `Retry-After` at once.
//!
//! Its own test binary, so that the process's memory is this test's alone: the gateway runs in
//! this process and `/proc/self/status` measures it.

/// The gateway binary's allocator (its default `mimalloc` feature): the memory bound is about the
/// process as it ships, and glibc's malloc keeps Argon2's freed blocks in per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use flightmesh_gateway::auth::ARGON2_MEMORY_BYTES;
use flightmesh_testkit::TestDatabase;
use serde_json::{Value, json};

/// The API tests' helpers: the burst runs on the lone gateway their identity tests use.
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use support::{metric, send_as, start_lone_gateway, status_json_and_header};

const PERMITS: u64 = 4;
const LOGINS: usize = 200;
/// Room for what is not Argon2: 200 connections on both sides, their buffers and tasks.
const SLACK_BYTES: u64 = 96 * 1024 * 1024;

/// A `/proc/self/status` field in bytes (`VmRSS`: now; `VmHWM`: the peak so far).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|kib| kib.trim().parse::<u64>().unwrap() * 1024)
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// POST the login `body` to the gateway at `base` → the response.
async fn log_in(http: &reqwest::Client, base: &str, body: &Value) -> reqwest::Response {
    let request = http.post(format!("{base}/api/v1/auth/login")).json(body);
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_200_logins_stays_under_the_memory_bound_and_sheds_with_503() {
    let db = TestDatabase::create().await;
    let gateway = start_lone_gateway(
        &db,
        &[
            ("PASSWORD_HASH_CONCURRENCY", "4"),
            // The hashing permits are what this test bounds, not the gateway's own admission
            // limit (which would refuse part of the burst first, with the generic 503).
            ("MAX_CONCURRENT_REQUESTS", "1000"),
        ],
    )
    .await;
    let base = gateway.base.as_str();
    let http = reqwest::Client::new();
    let login = json!({"email": "ana@example.com", "password": "secreto-largo"});
    let register = http.post(format!("{base}/api/v1/auth/register")).json(
        &json!({"email": "ana@example.com", "password": "secreto-largo", "full_name": "Ana"}),
    );
    assert_eq!(send_as(register, None).await.0, 200);
    // Warm-up: one login of each kind of work, so the baseline holds the allocator's arenas.
    for _ in 0..2 {
        assert_eq!(log_in(&http, base, &login).await.status(), 200);
    }

    let baseline = status_bytes("VmRSS");
    let bound = baseline + PERMITS * ARGON2_MEMORY_BYTES + SLACK_BYTES;
    let answers = futures::future::join_all((0..LOGINS).map(|_| async {
        status_json_and_header(log_in(&http, base, &login).await, "retry-after").await
    }))
    .await;
    let peak = status_bytes("VmHWM");
    let after = status_bytes("VmRSS");

    let ok = answers.iter().filter(|(status, ..)| *status == 200).count();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert_eq!(ok + shed.len(), LOGINS, "only 200 and 503: {answers:?}");
    assert!(ok >= 1, "some logins get a permit");
    assert!(!shed.is_empty(), "200 logins at once exceed 4 permits");
    for (_, body, retry_after) in &shed {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            body,
            &json!({"detail": "El servicio esta ocupado. Intente de nuevo mas tarde."})
        );
    }
    let counted = metric(
        &flightmesh_runtime::metrics::render(),
        "gateway_password_hash_busy_total",
    );
    #[allow(clippy::cast_precision_loss)]
    let expected = shed.len() as f64;
    assert_eq!(counted, Some(expected), "every shed login is counted");
    let mib = |bytes: u64| bytes / (1024 * 1024);
    eprintln!(
        "baseline {} MiB, peak {} MiB, after {} MiB, bound {} MiB; {ok} logged in, {} shed",
        mib(baseline),
        mib(peak),
        mib(after),
        mib(bound),
        shed.len()
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB above the bound {} MiB (baseline {} + {PERMITS} × 19 + {})",
        mib(peak),
        mib(bound),
        mib(baseline),
        mib(SLACK_BYTES)
    );

    // Shed logins are not lost capacity: once the burst is over, logins work again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log_in(&http, base, &login).await.status(), 200);
    gateway.stop.cancel();
    gateway.task.await.unwrap().unwrap();
}
