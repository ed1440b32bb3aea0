//! The catalog is answered from memory: cached answers survive a database outage, and a change
//! made through one replica reaches every replica's cache by the `catalog.changed` event (not by
//! the TTL, which these tests set to an hour).

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually, test_env};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    GetDestinationRequest, ListDestinationsRequest, ListFlightsRequest,
};
use flightmesh_testkit::ServiceRole;
use tonic::Code;

use crate::{client, create_destination, flight_request, mesh_behind_a_database_proxy};

#[tokio::test(flavor = "multi_thread")]
async fn cached_answers_survive_a_database_outage() {
    let (proxy, mesh) = mesh_behind_a_database_proxy(&[
        ("FLIGHTS_CATALOG_CACHE_TTL", "1h"),
        ("FLIGHTS_SEATS_CACHE_TTL", "1h"),
    ])
    .await;
    let mut client = client(&mesh).await;
    let lima = create_destination(&mut client, "Lima", "10").await;
    let cusco = create_destination(&mut client, "Cusco", "20").await;
    client
        .create_flight(flight_request("CA100", "100", lima.id))
        .await
        .unwrap();
    // The writes' own `catalog.changed` events drop the cache when they arrive: let them arrive
    // before filling it.
    eventually(Duration::from_secs(10), || async {
        unpublished(mesh.db.url()).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let destinations = client
        .list_destinations(ListDestinationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let flights = client
        .list_flights(ListFlightsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let cached_lima = client
        .get_destination(GetDestinationRequest { id: lima.id })
        .await
        .unwrap()
        .into_inner();

    proxy.cut();
    // What was read before is answered from memory, unchanged…
    for _ in 0..3 {
        let again = client
            .list_destinations(ListDestinationsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, destinations);
        let again = client
            .list_flights(ListFlightsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, flights);
        assert_eq!(
            client
                .get_destination(GetDestinationRequest { id: lima.id })
                .await
                .unwrap()
                .into_inner(),
            cached_lima
        );
    }
    // …what was not needs the database.
    let status = client
        .get_destination(GetDestinationRequest { id: cusco.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    proxy.restore();
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_one_replica_reaches_the_other_replicas_cache_by_event() {
    let mesh = TestMesh::start_with(|env, _| {
        env.set("FLIGHTS_CATALOG_CACHE_TTL", "1h")
            .set("FLIGHTS_SEATS_CACHE_TTL", "1h")
    })
    .await;
    // A second flights replica: same database, same catalog exchange, its own cache.
    let env = test_env(&mesh.db, &mesh.names)
        .set("DATABASE_URL", mesh.db.service_url(ServiceRole::Flights))
        .set("BOOKINGS_URL", format!("http://{}", mesh.addrs.bookings))
        .set("CATALOG_CACHE_TTL", "1h")
        .set("SEATS_CACHE_TTL", "1h")
        .set("OUTBOX_RELAY", "false")
        .set("MIGRATE_ON_START", "false");
    let replica = flightmesh_flights::build(flightmesh_flights::Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let replica = flightmesh::testing::Replica::start(replica);
    let mut other = FlightServiceClient::new(mesh.channel(replica.addr).await);
    let mut client = client(&mesh).await;

    let lima = create_destination(&mut client, "Lima", "10").await;
    // The replica caches the catalog as it is now.
    let names = |list: flightmesh_proto::flights::ListDestinationsResponse| -> Vec<String> {
        list.destinations.into_iter().map(|d| d.name).collect()
    };
    eventually(Duration::from_secs(10), || {
        let mut other = other.clone();
        async move {
            other
                .list_destinations(ListDestinationsRequest::default())
                .await
                .is_ok_and(|list| names(list.into_inner()) == ["Lima"])
        }
    })
    .await;
    let before = other
        .list_flights(ListFlightsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(before.flights.is_empty());

    // A destination and a flight created through the first replica: the second sees both
    // long before its hour-long TTL.
    create_destination(&mut client, "Cusco", "20").await;
    client
        .create_flight(flight_request("CA200", "100", lima.id))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || {
        let mut other = other.clone();
        async move {
            let destinations = other
                .list_destinations(ListDestinationsRequest::default())
                .await
                .map(|l| names(l.into_inner()));
            let flights = other
                .list_flights(ListFlightsRequest::default())
                .await
                .map(|l| l.into_inner().flights.len());
            destinations.is_ok_and(|d| d == ["Lima", "Cusco"]) && flights.is_ok_and(|n| n == 1)
        }
    })
    .await;
    other
        .list_destinations(ListDestinationsRequest::default())
        .await
        .unwrap();
    replica.stop().await;
    mesh.stop().await;
}

/// Catalog events not yet published.
async fn unpublished(url: &str) -> i64 {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    flightmesh_testkit::count(
        &mut conn,
        "SELECT count(*) FROM flights.outbox WHERE published_at IS NULL",
    )
    .await
}
