//! grpc.health.v1, reflection and the admin port; health turns NOT_SERVING while draining.

use std::time::Duration;

use flightmesh::testing::TestMesh;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

async fn check(addr: std::net::SocketAddr, service: &str) -> Result<ServingStatus, String> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .map_err(|err| err.to_string())?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map_err(|status| status.to_string())?;
    Ok(response.into_inner().status())
}

/// GET → (status, body).
pub async fn http_get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_serving_for_the_server_and_each_service() {
    let mesh = TestMesh::start().await;
    for service in ["", "flightmesh.flights.v1.FlightService", "liveness"] {
        assert_eq!(
            check(mesh.addrs.flights, service).await,
            Ok(ServingStatus::Serving),
            "{service:?}"
        );
    }
    let admin = format!("http://{}", mesh.addrs.admin[0]);
    assert_eq!(http_get(&format!("{admin}/livez")).await.0, 200);
    let readyz = http_get(&format!("{admin}/readyz")).await;
    assert_eq!(readyz, (200, r#"{"status":"ready"}"#.to_owned()));
    let (_, metrics) = http_get(&format!("{admin}/metrics")).await;
    assert!(metrics.contains("grpc_server_handled_total"), "{metrics}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_turns_health_not_serving_before_the_listener_closes() {
    let mesh = TestMesh::start_with(|env, _| env.set("FLIGHTS_DRAIN_DELAY", "2s")).await;
    let flights = mesh.addrs.flights;
    assert_eq!(check(flights, "").await, Ok(ServingStatus::Serving));

    let stopping = tokio::spawn(mesh.stop());
    // The drain window: a *new* connection is still accepted and is told NOT_SERVING.
    let draining = async {
        loop {
            if let Ok(ServingStatus::NotServing) = check(flights, "").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(1), draining)
        .await
        .expect("health turns NOT_SERVING while the listener still accepts");
    assert_eq!(
        check(flights, "flightmesh.flights.v1.FlightService").await,
        Ok(ServingStatus::NotServing)
    );

    // After the drain delay the listener closes and the service stops.
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stops after draining")
        .unwrap();
    assert!(check(flights, "").await.is_err(), "the listener is closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mesh = TestMesh::start().await;
    let mut client = ServerReflectionClient::new(mesh.channel(mesh.addrs.flights).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "flightmesh.flights.v1.FlightService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    mesh.stop().await;
}
