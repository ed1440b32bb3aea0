//! The edge under attack: forged `X-Forwarded-For`, a dead limiter store, slow clients, and what
//! the public port does not show.

use std::time::{Duration, Instant};

use flightmesh::testing::{TestMesh, status_and_json};

use crate::support::{admin_metrics, closed_port, get_with_headers, mesh_with, metric};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GET /api/v1/flights/ (the default class) with an `X-Forwarded-For` header → status.
async fn flights_via_proxy(mesh: &TestMesh, forwarded_for: &str) -> u16 {
    get_with_headers(
        mesh,
        "/api/v1/flights/",
        &[("X-Forwarded-For", forwarded_for)],
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_limiter_keys_on_the_real_client_whatever_it_forges() {
    // The test's loopback connection plays the proxy, which appends the real client's address.
    let mesh = mesh_with(&[
        ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("GATEWAY_RATE_LIMIT_DEFAULT", "3/60s"),
    ])
    .await;

    // Two real clients forge the same left-most hop: each still has its own budget.
    for real in ["198.51.100.1", "198.51.100.2"] {
        let statuses: Vec<u16> = futures_statuses(&mesh, 4, |_| format!("6.6.6.6, {real}")).await;
        assert_eq!(statuses, [200, 200, 200, 429], "client {real}");
    }
    // A client that forges a new left-most hop every time is still one client.
    let statuses = futures_statuses(&mesh, 5, |i| format!("10.9.8.{i}, 198.51.100.3")).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Nor can it pose as a client that still has budget: only the right-most hop counts.
    let statuses = futures_statuses(&mesh, 2, |_| "198.51.100.9, 198.51.100.3".to_owned()).await;
    assert_eq!(statuses, [429, 429], "the right-most hop is 198.51.100.3");
    mesh.stop().await;
}

/// `count` sequential requests, the i-th with the `X-Forwarded-For` made by `header(i)`.
async fn futures_statuses(
    mesh: &TestMesh,
    count: usize,
    header: impl Fn(usize) -> String,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..count {
        statuses.push(flights_via_proxy(mesh, &header(i)).await);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn without_trusted_proxies_the_header_is_ignored() {
    let mesh = TestMesh::start_with(|env, _| env.set("GATEWAY_RATE_LIMIT_DEFAULT", "2/60s")).await;
    // Different "clients" in the header, one real peer: one budget.
    let statuses = futures_statuses(&mesh, 3, |i| format!("203.0.113.{i}")).await;
    assert_eq!(statuses, [200, 200, 429]);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_budget_holds_when_redis_is_down() {
    // A port nobody listens on.
    let dead = format!("redis://{}", closed_port());
    let mesh = mesh_with(&[
        ("GATEWAY_RATE_LIMIT_STORE", "redis"),
        ("GATEWAY_REDIS_URL", &dead),
        ("GATEWAY_RATE_LIMIT_AUTH", "3/60s"),
        ("GATEWAY_RATE_LIMIT_DEFAULT", "1/60s"),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _) = mesh
            .post(
                "/api/v1/auth/login",
                &json!({"email": "nadie@example.com", "password": "adivinando"}),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // The default class protects capacity only: it still fails open.
    for _ in 0..3 {
        assert_eq!(mesh.get("/api/v1/flights/").await.0, 200);
    }
    let metrics = admin_metrics(&mesh).await;
    let count =
        |name: &str| metric(&metrics, name).unwrap_or_else(|| panic!("{name} in {metrics}"));
    assert!(
        count("gateway_rate_limiter_fallbacks_total") >= 5.0,
        "{metrics}"
    );
    assert!(
        count("gateway_rate_limiter_errors_total") >= 8.0,
        "{metrics}"
    );
    mesh.stop().await;
}

/// Reads until the server closes the connection (or `limit` passes) → (bytes, time taken).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the connection was still open after {limit:?}: {:?}",
        String::from_utf8_lossy(&received)
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let mesh = TestMesh::start_with(|env, _| env.set("GATEWAY_HEADER_READ_TIMEOUT", "1s")).await;

    let mut half = TcpStream::connect(mesh.addrs.gateway).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut half, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(mesh.addrs.gateway).await.unwrap();
    let (_, took) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");

    // A prompt client is served as before.
    assert_eq!(mesh.get("/health").await.0, 200);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_speaks_does_not_hold_up_the_shutdown() {
    // Like a client's spare pooled connection: open, silent, within the header read timeout.
    let mesh = TestMesh::start().await;
    let _silent = TcpStream::connect(mesh.addrs.gateway).await.unwrap();
    assert_eq!(mesh.get("/health").await.0, 200);
    let started = Instant::now();
    mesh.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_with_prior_knowledge_is_still_served() {
    let mesh = TestMesh::start().await;
    let tcp = TcpStream::connect(mesh.addrs.gateway).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/health", mesh.addrs.gateway))
        .body(String::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    drop(sender);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closes() {
    let mesh = TestMesh::start_with(|env, _| env.set("GATEWAY_BODY_READ_TIMEOUT", "1s")).await;
    let mut slow = TcpStream::connect(mesh.addrs.gateway).await.unwrap();
    slow.write_all(
        b"POST /api/v1/flights/destinations/ HTTP/1.1\r\nHost: gateway\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ",
    )
    .await
    .unwrap();
    let (answer, took) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"detail":"La solicitud tardo demasiado en enviarse."}"#),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // Nothing was created from half a body.
    let (status, destinations) = mesh.get("/api/v1/flights/destinations/").await;
    assert_eq!((status, destinations), (200, json!([])));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_live_on_the_admin_port_and_docs_can_be_turned_off() {
    let mesh = mesh_with(&[
        ("GATEWAY_PUBLIC_METRICS", "false"),
        ("GATEWAY_API_DOCS", "false"),
    ])
    .await;
    assert_eq!(mesh.get("/api/v1/flights/").await.0, 200);
    for hidden in [
        "/metrics",
        "/docs",
        "/docs/",
        "/redoc",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ] {
        assert_eq!(
            mesh.get(hidden).await,
            (404, json!({"detail": "Ruta no encontrada."})),
            "{hidden}"
        );
    }
    // The contract's health routes stay on the public port.
    assert_eq!(mesh.get("/health").await.0, 200);
    assert_eq!(mesh.get("/readyz/self").await.0, 200);
    assert_eq!(mesh.get("/readyz").await.0, 200);

    let admin = format!("http://{}", mesh.addrs.gateway_admin);
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"route="/api/v1/flights""#),
        "the gateway's own metrics are on its admin port: {metrics}"
    );
    let livez = reqwest::get(format!("{admin}/livez")).await.unwrap();
    assert_eq!(livez.status(), 200);
    mesh.stop().await;
}

/// A "service" that answers every gRPC call with `grpc-status: code` and a message full of
/// internals (trailers-only, as tonic does for an error).
async fn failing_upstream(code: u8) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = hyper::service::service_fn(move |_request| async move {
                http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", code.to_string())
                    .header(
                        "grpc-message",
                        "relation%20%22bookings%22%20does%20not%20exist%20at%20db.rs:42",
                    )
                    .body(String::new())
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_internal_details_never_reach_the_client() {
    let internal = failing_upstream(13).await; // INTERNAL
    let unknown = failing_upstream(2).await; // UNKNOWN
    let mesh = mesh_with(&[
        ("GATEWAY_FLIGHTS_URL", &format!("http://{internal}")),
        ("GATEWAY_AI_URL", &format!("http://{unknown}")),
    ])
    .await;
    let response = get_with_headers(
        &mesh,
        "/api/v1/flights/",
        &[("X-Correlation-ID", "leak-check-1")],
    )
    .await;
    assert_eq!(response.headers()["x-correlation-id"], "leak-check-1");
    assert_eq!(
        status_and_json(response).await,
        (500, json!({"detail": "Error interno del servidor."}))
    );
    assert_eq!(
        mesh.post("/api/v1/ai/chat", &json!({"message": "hola"}))
            .await,
        (500, json!({"detail": "Error procesando solicitud de IA"}))
    );
    mesh.stop().await;
}
