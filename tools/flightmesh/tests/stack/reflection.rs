//! Server reflection in both versions on every gRPC port: grpcurl and grpcui speak
//! `grpc.reflection.v1`; Google's Python `grpcio-reflection`, Postman, Kreya, Evans and older
//! grpcurl speak only `grpc.reflection.v1alpha`.

use flightmesh::testing::TestMesh;
use tonic::transport::Channel;

/// The services one reflection version lists on `channel`. The two versions are the same
/// messages in two packages, so one macro serves both.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let answer = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect(concat!(stringify!($version), " reflection is served"))
            .into_inner()
            .message()
            .await
            .expect("an answer")
            .expect("one message");
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|service| service.name)
                .collect::<Vec<String>>(),
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

async fn both_versions(channel: Channel) -> [(&'static str, Vec<String>); 2] {
    [
        ("v1", list_services!(v1, channel.clone())),
        ("v1alpha", list_services!(v1alpha, channel)),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_v1_and_v1alpha_list_every_service_on_every_port() {
    let mesh = TestMesh::start().await;
    let addrs = mesh.addrs;
    for (port, addr, service) in [
        (
            "flights",
            addrs.flights,
            "flightmesh.flights.v1.FlightService",
        ),
        (
            "bookings",
            addrs.bookings,
            "flightmesh.bookings.v1.BookingService",
        ),
        (
            "stats-worker",
            addrs.stats,
            "flightmesh.stats.v1.StatsService",
        ),
        ("ai-agent", addrs.ai, "flightmesh.ai.v1.AiAgentService"),
    ] {
        for (version, names) in both_versions(mesh.channel(addr).await).await {
            for expected in [service, "grpc.health.v1.Health"] {
                assert!(
                    names.iter().any(|name| name == expected),
                    "{port} ({version}): {expected} not in {names:?}"
                );
            }
        }
    }
    mesh.stop().await;
}
