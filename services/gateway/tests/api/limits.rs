//! Rate limits (per client, per route class, shared through Redis) and upstream timeouts.

use std::time::{Duration, Instant};

use flightmesh::testing::{TestMesh, test_env};
use serde_json::json;

use crate::support::{mesh_with, start_gateway, status_json_and_header, with_vars};

/// `POST {base}/api/v1/ai/chat` → (status, body, `Retry-After`).
async fn chat(http: &reqwest::Client, base: &str) -> (u16, serde_json::Value, Option<String>) {
    let request = http
        .post(format!("{base}/api/v1/ai/chat"))
        .json(&json!({"message": "hola"}));
    status_json_and_header(request.send().await.unwrap(), "retry-after").await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ai_limit_answers_429_then_recovers_after_the_window() {
    let mesh = TestMesh::start_with(|env, _| env.set("GATEWAY_RATE_LIMIT_AI", "3/2s")).await;
    // Start at the beginning of a window so that the test does not straddle two.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(
        2000 - u64::try_from(now.as_millis() % 2000).unwrap() + 50,
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(chat(&mesh.http, &mesh.base).await.0, 200);
    }
    let (status, body, retry_after) = chat(&mesh.http, &mesh.base).await;
    assert_eq!(
        (status, body),
        (
            429,
            json!({"detail": "Demasiadas solicitudes. Intente de nuevo mas tarde."})
        )
    );
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Other routes have their own budget.
    assert_eq!(mesh.get("/api/v1/flights/").await.0, 200);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(chat(&mesh.http, &mesh.base).await.0, 200);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_sharing_redis_enforce_one_budget() {
    // Both gateways get the same budget, kept in Redis.
    let budget = [("RATE_LIMIT_AI", "4/60s"), ("RATE_LIMIT_STORE", "redis")];
    let mesh = mesh_with(&budget).await;
    // A second gateway replica in front of the same services and Redis.
    let env = with_vars(test_env(&mesh.db, &mesh.names), &budget)
        .set("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights))
        .set("BOOKINGS_URL", format!("http://{}", mesh.addrs.bookings))
        .set("STATS_URL", format!("http://{}", mesh.addrs.stats))
        .set("AI_URL", format!("http://{}", mesh.addrs.ai));
    let replica = start_gateway(&env).await;
    let replica_base = replica.base;

    let mut statuses = Vec::new();
    for base in [
        &mesh.base,
        &replica_base,
        &mesh.base,
        &replica_base,
        &mesh.base,
        &replica_base,
    ] {
        statuses.push(chat(&mesh.http, base).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    replica.stop.cancel();
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_slower_than_the_route_timeout_is_504() {
    // A "service" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mesh = mesh_with(&[
        ("GATEWAY_BOOKINGS_URL", &format!("http://{silent_addr}")),
        ("GATEWAY_REQUEST_TIMEOUT", "500ms"),
    ])
    .await;
    let started = Instant::now();
    let (status, body) = mesh.get("/api/v1/bookings/").await;
    assert_eq!(
        (status, body),
        (
            504,
            json!({"detail": "La solicitud excedio el tiempo de espera."})
        )
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    mesh.stop().await;
}
