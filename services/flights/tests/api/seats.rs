//! `seats_available` follows the bookings service's seat ledger.

use flightmesh::testing::TestMesh;
use flightmesh_proto::bookings::CreateBookingRequest;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_proto::flights::{
    CreateFlightRequest, GetDestinationMarketRequest, GetFlightRequest, ListFlightsRequest,
};
use tonic::Code;

use crate::{client, create_destination, flight_request};

#[tokio::test(flavor = "multi_thread")]
async fn seats_available_reflects_the_bookings_seat_ledger() {
    let mesh = TestMesh::start().await;
    let mut flights = client(&mesh).await;
    let destination = create_destination(&mut flights, "Cartagena", "50").await;
    let flight = flights
        .create_flight(CreateFlightRequest {
            capacity: Some(5),
            ..flight_request("CT-1", "100", destination.id)
        })
        .await
        .unwrap()
        .into_inner();
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
    let got = flights
        .get_flight(GetFlightRequest { id: flight.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.capacity, got.seats_available), (5, 3));
    let listed = flights
        .list_flights(ListFlightsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .flights;
    assert_eq!(listed[0].seats_available, 3);
    let market = flights
        .get_destination_market(GetDestinationMarketRequest {
            destination_name: "Cartagena".into(),
        })
        .await
        .unwrap()
        .into_inner();
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
    let app = flightmesh_flights::build(flightmesh_flights::Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let app = flightmesh::testing::Replica::start(app);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut flights =
        flightmesh_proto::flights::flight_service_client::FlightServiceClient::new(channel);
    let destination = create_destination(&mut flights, "Cartagena", "50").await;
    let flight = flights
        .create_flight(flight_request("CT-1", "100", destination.id))
        .await
        .unwrap()
        .into_inner();

    let status = flights
        .get_flight(GetFlightRequest { id: flight.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "No se pudo consultar la disponibilidad de asientos. Intente de nuevo."
    );
    app.stop().await;
}
