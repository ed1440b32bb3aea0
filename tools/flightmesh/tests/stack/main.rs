//! The whole mesh as `flightmesh up` runs it: every service in one process on its own port.

mod first_start;
mod leftovers;
mod metrics;
mod peers_down;
mod reflection;
mod roles;

use std::time::Duration;

use flightmesh::config_docs;
use flightmesh::testing::TestMesh;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread")]
async fn every_service_answers_health_serving_and_the_gateway_is_ready() {
    let mesh = TestMesh::start().await;
    let addrs = mesh.addrs;
    for (name, addr) in [
        ("flights", addrs.flights),
        ("bookings", addrs.bookings),
        ("stats-worker", addrs.stats),
        ("ai-agent", addrs.ai),
    ] {
        let status = HealthClient::new(mesh.channel(addr).await)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{name}");
    }

    let (status, body) = mesh.get("/readyz").await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("ready")),
        "{body}"
    );

    // Every service answers its routes through the gateway.
    for path in [
        "/api/v1/flights/",
        "/api/v1/bookings/",
        "/api/v1/stats/general",
    ] {
        assert_eq!(mesh.get(path).await.0, 200, "{path}");
    }
    let (status, body) = mesh
        .post("/api/v1/ai/chat", &json!({"message": "hola"}))
        .await;
    assert_eq!(status, 200, "{body}");

    tokio::time::timeout(Duration::from_secs(15), mesh.stop())
        .await
        .expect("the mesh stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_catalog_loads_once() {
    let mesh = TestMesh::start().await;
    let channel = mesh.channel(mesh.addrs.flights).await;
    let created = flightmesh::demo::load(channel.clone()).await.unwrap();
    assert!(created >= 8, "{created}");
    assert_eq!(
        flightmesh::demo::load(channel).await.unwrap(),
        0,
        "loading twice adds nothing"
    );
    let (_, flights) = mesh.get("/api/v1/flights/").await;
    assert_eq!(flights[0]["flight_number"], json!("CT-123"));
    mesh.stop().await;
}

#[test]
fn readme_configuration_tables_match_the_config_structs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- config:start -->")
        .expect("config:start marker")
        + "<!-- config:start -->".len();
    let end = readme
        .find("<!-- config:end -->")
        .expect("config:end marker");
    assert_eq!(
        readme[start..end].trim(),
        config_docs().trim(),
        "README configuration is stale: run scripts/readme-config.sh"
    );
}

#[test]
fn up_fails_with_one_line_naming_a_missing_dependency() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flightmesh"))
        .arg("up")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@{closed}/flightmesh"),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("PostgreSQL is not reachable") && lines[0].contains("DATABASE_URL"),
        "{stderr}"
    );
}

flightmesh_testkit::command_line_test!("flightmesh", ["up", "config-docs"]);
