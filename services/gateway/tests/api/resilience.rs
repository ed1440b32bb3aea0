//! Dependencies going away: answers are 503 with a clear message, and everything recovers by
//! itself when they come back.

use std::time::Duration;

use flightmesh_testkit::TcpProxy;
use serde_json::json;

use crate::{TestStack, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn database_restart_gives_503_then_recovers_without_restarting_anything() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = proxy.addr().to_string();
    let stack = TestStack::spawn_with(move |env, db| {
        env.set("DATABASE_URL", db.url().replace("127.0.0.1:5432", &proxied))
            .set("DATABASE_CONNECT_TIMEOUT", "500ms")
    })
    .await;
    let id = stack.destination("Cartagena", 50.0, true, true).await;

    // The database goes away: every request is a 503 with a message, not a 500 or a hang.
    proxy.cut();
    for path in [
        "/api/v1/flights/",
        &format!("/api/v1/flights/destinations/{id}"),
    ] {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(
            body,
            json!({"detail": "Servicio temporalmente no disponible. Intente de nuevo."})
        );
    }
    let (status, _) = stack
        .post(
            "/api/v1/flights/destinations/",
            &json!({"name": "Lima", "tax_amount": 1}),
        )
        .await;
    assert_eq!(status, 503);

    // It comes back: the same processes serve again.
    proxy.restore();
    eventually(Duration::from_secs(10), || async {
        stack.get("/api/v1/flights/").await.0 == 200
    })
    .await;
    let (status, body) = stack
        .get(&format!("/api/v1/flights/destinations/{id}"))
        .await;
    assert_eq!((status, body["name"].clone()), (200, json!("Cartagena")));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_backends_cost_nothing_after_the_fact() {
    let stack = TestStack::spawn().await;
    stack.destination("Cartagena", 50.0, true, true).await;
    assert!(stack.db.terminate_backends().await >= 1);
    let (status, list) = stack.get("/api/v1/flights/destinations/").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_that_are_down_answer_503_and_readyz_names_them() {
    let stack = TestStack::spawn().await;
    // Bookings, stats and AI point at a closed port in this stack.
    let (status, body) = stack
        .post(
            "/api/v1/bookings/",
            &json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": 1}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["detail"],
        json!("El servicio bookings no esta disponible. Intente de nuevo mas tarde.")
    );
    let (status, _) = stack.get("/api/v1/stats/general").await;
    assert_eq!(status, 503);

    let (status, body) = stack.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["services"]["flights"], json!("SERVING"));
    for down in ["bookings", "stats", "ai"] {
        assert!(
            body["services"][down]
                .as_str()
                .unwrap()
                .starts_with("unreachable"),
            "{body}"
        );
        assert!(body["status"].as_str().unwrap().contains(down), "{body}");
    }
}
