//! Dependencies going away: answers are 503 with a clear message, and everything recovers by
//! itself when they come back.

use std::time::Duration;

use flightmesh_testkit::TcpProxy;
use serde_json::json;

use crate::{TestStack, eventually, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn database_restart_gives_503_then_recovers_without_restarting_anything() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = proxy.addr().to_string();
    let stack = TestStack::start_with(move |env, db| {
        env.set(
            "FLIGHTS_DATABASE_URL",
            db.url().replace("127.0.0.1:5432", &proxied),
        )
        .set("FLIGHTS_DATABASE_CONNECT_TIMEOUT", "500ms")
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
    let stack = TestStack::start().await;
    stack.destination("Cartagena", 50.0, true, true).await;
    assert!(stack.db.terminate_backends().await >= 1);
    let (status, list) = stack.get("/api/v1/flights/destinations/").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_that_are_down_answer_503_and_readyz_names_them() {
    // A gateway whose services are all unreachable (nothing listens on their port).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db = flightmesh_testkit::TestDatabase::create().await;
    let env = flightmesh_runtime::Env::from_pairs([
        ("DATABASE_URL", db.url().to_owned()),
        ("ENVIRONMENT", "development".to_owned()),
        ("ACCESS_POLICY", "compatible".to_owned()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("FLIGHTS_URL", format!("http://{closed}")),
        ("BOOKINGS_URL", format!("http://{closed}")),
        ("STATS_URL", format!("http://{closed}")),
        ("AI_URL", format!("http://{closed}")),
    ]);
    let gateway =
        flightmesh_gateway::Gateway::build(flightmesh_gateway::Config::from_env(&env).unwrap())
            .await
            .unwrap();
    let base = format!("http://{}", gateway.local_addr());
    let shutdown = flightmesh_runtime::CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone()));
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{base}/api/v1/bookings/"))
        .json(&json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["detail"],
        json!("El servicio bookings no esta disponible. Intente de nuevo mas tarde.")
    );
    let (status, _) = status_and_json(
        http.get(format!("{base}/api/v1/stats/general"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503);

    let (status, body) =
        status_and_json(http.get(format!("{base}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["services"]["identity"],
        json!("SERVING"),
        "the gateway's own identity service"
    );
    for down in ["flights", "bookings", "stats", "ai"] {
        assert!(
            body["services"][down]
                .as_str()
                .unwrap()
                .starts_with("unreachable"),
            "{body}"
        );
        assert!(body["status"].as_str().unwrap().contains(down), "{body}");
    }
    // The gateway itself is ready: the routes that need no upstream (auth, docs) still work,
    // so the readiness probe (`/readyz/self`) keeps it in the Service.
    let (status, body) = status_and_json(
        http.get(format!("{base}/readyz/self"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    shutdown.cancel();
}
