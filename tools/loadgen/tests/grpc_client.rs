//! The load generator's gRPC client against a real mesh: what the benchmarks' gRPC runs load the
//! services with.

use flightmesh::testing::{TestMesh, closed_addr};
use flightmesh_loadgen::client::Client;

fn url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_grpc_call_of_the_scenarios_reaches_its_service() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(2).await;
    let addrs = &mesh.addrs;
    let client = Client::grpc(&url(addrs.bookings), &url(addrs.flights), &url(addrs.stats))
        .await
        .unwrap();

    for passenger in ["Ana", "Luis"] {
        let booked = client.book(flight, passenger, 30, false).await;
        assert!(booked.ok, "{booked:?}");
        assert_eq!(booked.label, "OK");
    }
    // The flight holds two: the third is the service's answer, not a transport failure.
    let sold_out = client.book(flight, "Eva", 30, false).await;
    assert!(!sold_out.ok);
    assert_eq!(sold_out.label, "Aborted");

    // A flight, a page of flights, a page of bookings; the catalog; both statistics.
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
