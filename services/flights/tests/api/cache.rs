//! The catalog is answered from memory: cached answers survive a database outage, and a change
//! made through one replica reaches every replica's cache by the `catalog.changed` event (not by
//! the TTL, which these tests set to an hour).

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually, test_env};
use flightmesh_proto::flights::Destination;
use flightmesh_testkit::ServiceRole;
use tonic::Code;

use crate::{
    Client, client, create_destination, create_flight, get_destination, list_destinations,
    list_flights, mesh_behind_a_database_proxy, start_flights,
};

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
    create_flight(&mut client, "CA100", "100", lima.id).await;
    // The writes' own `catalog.changed` events drop the cache when they arrive: let them arrive
    // before filling it.
    eventually(Duration::from_secs(10), || async {
        unpublished(mesh.db.url()).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let destinations = list_destinations(&mut client).await.unwrap();
    let flights = list_flights(&mut client).await.unwrap();
    let cached_lima = get_destination(&mut client, lima.id).await.unwrap();

    proxy.cut();
    // What was read before is answered from memory, unchanged…
    for _ in 0..3 {
        assert_eq!(list_destinations(&mut client).await.unwrap(), destinations);
        assert_eq!(list_flights(&mut client).await.unwrap(), flights);
        assert_eq!(
            get_destination(&mut client, lima.id).await.unwrap(),
            cached_lima
        );
    }
    // …what was not needs the database.
    let status = get_destination(&mut client, cusco.id).await.unwrap_err();
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
    let replica = start_flights(&env).await;
    let mut other = Client::new(mesh.channel(replica.addr).await);
    let mut client = client(&mesh).await;

    let lima = create_destination(&mut client, "Lima", "10").await;
    // The replica caches the catalog as it is now.
    let names =
        |list: Vec<Destination>| -> Vec<String> { list.into_iter().map(|d| d.name).collect() };
    eventually(Duration::from_secs(10), || {
        let mut other = other.clone();
        async move {
            list_destinations(&mut other)
                .await
                .is_ok_and(|list| names(list) == ["Lima"])
        }
    })
    .await;
    let before = list_flights(&mut other).await.unwrap();
    assert!(before.is_empty());

    // A destination and a flight created through the first replica: the second sees both
    // long before its hour-long TTL.
    create_destination(&mut client, "Cusco", "20").await;
    create_flight(&mut client, "CA200", "100", lima.id).await;
    eventually(Duration::from_secs(10), || {
        let mut other = other.clone();
        async move {
            let destinations = list_destinations(&mut other).await.map(names);
            let flights = list_flights(&mut other).await.map(|l| l.len());
            destinations.is_ok_and(|d| d == ["Lima", "Cusco"]) && flights.is_ok_and(|n| n == 1)
        }
    })
    .await;
    list_destinations(&mut other).await.unwrap();
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
