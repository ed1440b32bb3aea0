//! A host whose background task dies stops being ready and fails, so the process exits non-zero.

use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_runtime::{CancellationToken, Host, HostConfig, HostError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn config(drain_delay: Duration) -> HostConfig {
    HostConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        drain_delay,
        shed: flightmesh_runtime::shed::ShedConfig::default(),
        listeners: None,
    }
}

/// `GET path` on the admin port: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_default();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `GET /readyz` up to 50 times, `pause` apart, until it answers `status`; returns the
/// last answer (the caller asserts on it).
async fn readyz_until(addr: SocketAddr, status: u16, pause: Duration) -> (u16, String) {
    let mut answer = (0, String::new());
    for _ in 0..50 {
        answer = get(addr, "/readyz").await;
        if answer.0 == status {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    answer
}

/// The gRPC health of the whole server ("" service): 1 SERVING, 2 NOT_SERVING.
async fn health(addr: SocketAddr) -> i32 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_task_makes_the_host_unready_and_its_run_fail() {
    let mut host = Host::bind("supervised", &config(Duration::from_secs(2)))
        .await
        .unwrap();
    let (grpc, admin) = (host.grpc_addr(), host.admin_addr());
    let trigger = CancellationToken::new();
    let fire = trigger.clone();
    host.spawn("event consumer", move |shutdown| async move {
        tokio::select! {
            () = fire.cancelled() => {}
            () = shutdown.cancelled() => return,
        }
        panic!("attempt to multiply with overflow");
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(host.run(shutdown.clone()));

    // Ready while the task runs.
    let ready = readyz_until(admin, 200, Duration::from_millis(50)).await;
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert_eq!(health(grpc).await, 1);

    trigger.cancel();
    // During the drain: unready, naming the task and the cause; health NOT_SERVING.
    let unready = readyz_until(admin, 503, Duration::from_millis(20)).await;
    assert_eq!(unready.0, 503, "{}", unready.1);
    let body: serde_json::Value = serde_json::from_str(&unready.1).unwrap();
    let cause = body["failed"]["event consumer"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cause.starts_with("panicked: attempt to multiply with overflow"),
        "{body}"
    );
    assert_eq!(health(grpc).await, 2);
    assert!(
        !shutdown.is_cancelled(),
        "the caller's token is left alone (other services of the process stop by its error)"
    );

    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the host stops by itself")
        .unwrap();
    match result {
        Err(HostError::Task(failure)) => {
            assert_eq!(failure.task, "event consumer");
            assert!(failure.cause.starts_with("panicked: "), "{failure}");
        }
        other => panic!("expected a task failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_returns_or_fails_early_stops_the_host_with_an_error() {
    for fails in [false, true] {
        let mut host = Host::bind("supervised", &config(Duration::ZERO))
            .await
            .unwrap();
        host.spawn("outbox relay", move |_shutdown| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fails {
                Err("queue declared with other arguments")
            } else {
                Ok(())
            }
        });
        let result =
            tokio::time::timeout(Duration::from_secs(10), host.run(CancellationToken::new()))
                .await
                .expect("the host stops by itself");
        let expected = if fails {
            "failed: queue declared with other arguments"
        } else {
            "ended unexpectedly"
        };
        match result {
            Err(HostError::Task(failure)) => {
                assert_eq!(
                    (failure.task, failure.cause.as_str()),
                    ("outbox relay", expected)
                );
            }
            other => panic!("expected a task failure, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_that_stop_on_shutdown_end_the_host_cleanly() {
    let mut host = Host::bind("supervised", &config(Duration::ZERO))
        .await
        .unwrap();
    host.spawn("idempotency key purge", |shutdown| async move {
        shutdown.cancelled().await;
    });
    host.spawn("event consumer", |shutdown| async move {
        shutdown.cancelled().await;
        Ok::<(), std::io::Error>(())
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(host.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
