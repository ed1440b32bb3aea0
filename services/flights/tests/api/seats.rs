//! `seats_available` follows the bookings service's seat ledger.

use flightmesh::testing::TestMesh;
use flightmesh_proto::bookings::CreateBookingRequest;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use tonic::Code;

use crate::{
    Client, client, create_destination, create_flight, create_flight_seating,
    get_destination_market, get_flight, list_flights, start_flights,
};

#[tokio::test(flavor = "multi_thread")]
async fn seats_available_reflects_the_bookings_seat_ledger() {
    let mesh = TestMesh::start().await;
    let mut flights = client(&mesh).await;
    let destination = create_destination(&mut flights, "Cartagena", "50").await;
    let flight = create_flight_seating(&mut flights, "CT-1", "100", destination.id, 5).await;
    assert_eq!(flight.seats_available, 5);

    let mut bookings = BookingServiceClient::new(mesh.channel(mesh.addrs.bookings).await);
    for name in ["Ana", "Luis"] {
        bookings
            .create_booking(CreateBookingRequest {
                passenger_name: name.into(),
                passenger_age: 30,
                has_pet: false,
                flight_id: flight.id,
            })
            .await
            .unwrap();
    }
    let got = get_flight(&mut flights, flight.id).await.unwrap();
    assert_eq!((got.capacity, got.seats_available), (5, 3));
    let listed = list_flights(&mut flights).await.unwrap();
    assert_eq!(listed[0].seats_available, 3);
    let market = get_destination_market(&mut flights, "Cartagena")
        .await
        .unwrap();
    assert_eq!((market.total_capacity, market.seats_available), (5, 3));

    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_seat_ledger_flight_reads_are_unavailable_not_wrong() {
    // Flights pointed at a bookings service that does not exist.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db = flightmesh_testkit::TestDatabase::create().await;
    let names = flightmesh::testing::Isolation::new();
    let env =
        flightmesh::testing::test_env(&db, &names).set("BOOKINGS_URL", format!("http://{closed}"));
    let app = start_flights(&env).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut flights = Client::new(channel);
    let destination = create_destination(&mut flights, "Cartagena", "50").await;
    let flight = create_flight(&mut flights, "CT-1", "100", destination.id).await;

    let status = get_flight(&mut flights, flight.id).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "No se pudo consultar la disponibilidad de asientos. Intente de nuevo."
    );
    app.stop().await;
    flightmesh::testing::cleanup(names);
}
