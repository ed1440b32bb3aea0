//! The load generator's clients against a real mesh: gRPC straight to the services and REST
//! through the gateway, what the benchmarks' runs load the system with.

use flightmesh::testing::{TestMesh, closed_addr};
use flightmesh_loadgen::client::{Client, Outcome};

fn url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

/// Ana and Luis book the two seats of `flight`, each answered `booked` (the transport's success
/// label); then Eva's booking, which must fail: its outcome.
async fn two_bookings_then_a_third(client: &Client, flight: i64, booked: &str) -> Outcome {
    for passenger in ["Ana", "Luis"] {
        let outcome = client.book(flight, passenger, 30, false).await;
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(outcome.label, booked);
    }
    let third = client.book(flight, "Eva", 30, false).await;
    assert!(!third.ok, "{third:?}");
    third
}

/// Every read of the scenarios answers (a flight, a page of flights, a page of bookings; the
/// catalog; both statistics), and the mesh holds the two bookings made (Ana's and Luis').
async fn reads_and_the_two_bookings_are_there(client: &Client, mesh: &TestMesh, flight: i64) {
    for which in 0..3 {
        let read = client.read(which, flight).await;
        assert!(read.ok, "read {which}: {read:?}");
    }
    assert!(client.read_catalog().await.ok);
    for which in 0..2 {
        let stats = client.read_stats(which).await;
        assert!(stats.ok, "stats {which}: {stats:?}");
    }
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.bookings WHERE passenger_name IN ('Ana', 'Luis')")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_grpc_call_of_the_scenarios_reaches_its_service() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(2).await;
    let addrs = &mesh.addrs;
    let client = Client::grpc(&url(addrs.bookings), &url(addrs.flights), &url(addrs.stats))
        .await
        .unwrap();

    // The answer is dropped unread, but its status is not: a refusal is the service's code.
    let refused = client.book(flight, "Ana", -1, false).await;
    assert!(!refused.ok);
    assert_eq!(refused.label, "InvalidArgument");
    // The flight holds two: the third is the service's answer, not a transport failure.
    let sold_out = two_bookings_then_a_third(&client, flight, "OK").await;
    assert_eq!(sold_out.label, "Aborted");

    reads_and_the_two_bookings_are_there(&client, &mesh, flight).await;
    mesh.stop().await;
}

#[tokio::test]
async fn a_malformed_or_dead_address_fails_before_the_run() {
    let dead = url(closed_addr());
    assert!(Client::grpc("not a url", &dead, &dead).await.is_err());
    assert!(Client::grpc(&dead, &dead, &dead).await.is_err());
    // Statistics are only read by the flow scenario: their address is not dialled up front.
    let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = url(live.local_addr().unwrap());
    assert!(Client::grpc(&live, &live, &dead).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rest_call_of_the_scenarios_reaches_the_gateway() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(2).await;
    let client = Client::rest(&url(mesh.addrs.gateway), 4);
    let Client::Rest { http1, .. } = &client else {
        unreachable!("Client::rest is a REST client")
    };
    assert!(http1.is_some(), "an http:// gateway gets the lean client");

    // Sold out: the contract's answer, not a transport failure.
    let sold_out = two_bookings_then_a_third(&client, flight, "200").await;
    assert!(!sold_out.label.starts_with("transport"), "{sold_out:?}");

    reads_and_the_two_bookings_are_there(&client, &mesh, flight).await;
    mesh.stop().await;

    // The gateway gone: a transport failure, not a hang.
    let gone = client.book(flight, "Eva", 30, false).await;
    assert!(gone.label.starts_with("transport"), "{gone:?}");
}
