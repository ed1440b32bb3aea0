//! Catalog operations, their validation and their status codes.

use flightmesh_proto::flights::{
    CreateFlightRequest, FindDestinationByNameRequest, ListFlightsRequest, SearchFlightsRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use flightmesh::Service;
use flightmesh::testing::TestMesh;

use crate::{
    client, create_destination, create_destination_with, create_flight, create_flight_seating, dec,
    destination_request, flight_request, get_destination, get_destination_market, get_flight,
    list_destinations,
};

/// `(field, description)` of every BadRequest violation in a status.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT carries a BadRequest")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, d)| ((*f).to_owned(), (*d).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_lists_and_gets_destinations_and_flights() {
    let mesh = TestMesh::start().await;
    let mut client = client(&mesh).await;

    let cartagena = create_destination(&mut client, "Cartagena", "50").await;
    assert_eq!(cartagena.name, "Cartagena");
    assert_eq!(cartagena.tax_amount, dec("50.00"));
    assert!(cartagena.is_promotion && cartagena.allows_pets);

    let londres = create_destination_with(
        &mut client,
        destination_request("Londres", "100", false, false),
    )
    .await;
    assert!(londres.id > cartagena.id);

    // allows_pets defaults to true when absent.
    let mut lima = destination_request("Lima", "0", false, false);
    lima.allows_pets = None;
    let lima = create_destination_with(&mut client, lima).await;
    assert!(lima.allows_pets);

    let listed = list_destinations(&mut client).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [cartagena.id, londres.id, lima.id]
    );

    let got = get_destination(&mut client, londres.id).await.unwrap();
    assert_eq!(got, londres);

    let flight = create_flight_seating(&mut client, "CT-123", "1000", cartagena.id, 3).await;
    assert_eq!(flight.base_price, dec("1000.00"));
    assert_eq!((flight.capacity, flight.seats_available), (3, 3));
    assert_eq!(flight.destination.as_ref(), Some(&cartagena));

    let default_capacity = create_flight(&mut client, "LON-99", "2000", londres.id).await;
    assert_eq!(default_capacity.capacity, 180);

    let got = get_flight(&mut client, flight.id).await.unwrap();
    assert_eq!(got, flight);

    let page = client
        .list_flights(ListFlightsRequest {
            skip: Some(1),
            limit: Some(5),
        })
        .await
        .unwrap()
        .into_inner()
        .flights;
    assert_eq!(
        page.iter()
            .map(|f| f.flight_number.as_str())
            .collect::<Vec<_>>(),
        ["LON-99"]
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_input_is_invalid_argument_with_every_field_violation() {
    // The flights service alone: its catalog rules need nothing else.
    let mesh = TestMesh::builder().only(&[Service::Flights]).start().await;
    let mut client = client(&mesh).await;

    let status = client
        .create_destination(destination_request("  ", "-1", false, true))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        pairs(&[
            ("name", "name no puede estar vacio"),
            ("tax_amount", "tax_amount no puede ser negativo")
        ])
    );

    let destination = create_destination(&mut client, "Cartagena", "50").await;
    for (price, message) in [
        ("0", "base_price debe ser mayor a 0"),
        ("-100", "base_price debe ser mayor a 0"),
    ] {
        let status = client
            .create_flight(flight_request("CT-1", price, destination.id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations(&status), pairs(&[("base_price", message)]));
    }

    let status = client
        .create_flight(CreateFlightRequest {
            flight_number: String::new(),
            origin: String::new(),
            base_price: None,
            destination_id: destination.id,
            capacity: Some(0),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        pairs(&[
            ("flight_number", "flight_number no puede estar vacio"),
            ("origin", "origin no puede estar vacio"),
            ("base_price", "base_price es obligatorio"),
            ("capacity", "capacity debe ser mayor a 0"),
        ])
    );

    let status = client
        .list_flights(ListFlightsRequest {
            skip: Some(-1),
            limit: Some(0),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        pairs(&[
            ("skip", "skip no puede ser negativo"),
            ("limit", "limit debe estar entre 1 y 1000")
        ])
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_are_already_exists_and_unknown_ids_not_found() {
    // The flights service alone: its catalog rules need nothing else.
    let mesh = TestMesh::builder().only(&[Service::Flights]).start().await;
    let mut client = client(&mesh).await;
    let destination = create_destination(&mut client, "Cartagena", "50").await;
    create_flight(&mut client, "CT-123", "1000", destination.id).await;

    // Names are unique whatever their case; the message names what was asked for.
    let status = client
        .create_destination(destination_request("cartagena", "10", false, true))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.message(), "El destino cartagena ya existe.");

    let status = client
        .create_flight(flight_request("CT-123", "500", destination.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.message(), "El vuelo CT-123 ya existe.");

    let status = client
        .create_flight(flight_request("XX-1", "500", destination.id + 1000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Destino no encontrado.");

    let status = get_flight(&mut client, 999).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "Vuelo no encontrado.")
    );
    let status = get_destination(&mut client, 999).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "Destino no encontrado.")
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicate_creations_make_one_row() {
    // The flights service alone: its catalog rules need nothing else.
    let mesh = TestMesh::builder().only(&[Service::Flights]).start().await;
    let client = client(&mesh).await;
    let attempts = (0..8).map(|_| {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .create_destination(destination_request("Madrid", "80", false, true))
                .await
        })
    });
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists),
        }
    }
    assert_eq!(created, 1);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_lookups_for_the_other_services() {
    let mesh = TestMesh::start().await;
    let mut client = client(&mesh).await;
    let cartagena = create_destination(&mut client, "Cartagena", "50").await;
    create_flight(&mut client, "CT-1", "1000", cartagena.id).await;
    create_flight(&mut client, "CT-2", "500.01", cartagena.id).await;
    let empty = create_destination(&mut client, "Quito", "10").await;

    let found = client
        .find_destination_by_name(FindDestinationByNameRequest {
            name: " CARTAGENA ".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, cartagena.id);

    let market = get_destination_market(&mut client, "cartagena")
        .await
        .unwrap();
    assert_eq!(market.flight_count, 2);
    // (1000 + 500.01) / 2 = 750.005 → 750.01, half away from zero.
    assert_eq!(market.average_base_price, dec("750.01"));
    assert_eq!((market.total_capacity, market.seats_available), (360, 360));

    let market = get_destination_market(&mut client, "quito").await.unwrap();
    assert_eq!((market.flight_count, market.average_base_price), (0, None));
    assert_eq!(market.destination.unwrap().id, empty.id);

    let status = get_destination_market(&mut client, "Atlantis")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let found = client
        .search_flights(SearchFlightsRequest {
            origin: "bog".into(),
            destination_name: "carta".into(),
            limit: None,
        })
        .await
        .unwrap()
        .into_inner()
        .flights;
    assert_eq!(found.len(), 2);
    mesh.stop().await;
}
