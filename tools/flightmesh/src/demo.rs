//! A small demo catalog, loaded through the flights service's own API (so it obeys every rule).

use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    CreateDestinationRequest, CreateFlightRequest, FindDestinationByNameRequest,
};
use flightmesh_proto::types::Decimal;
use tonic::Code;
use tonic::transport::Channel;

/// (name, tax, on promotion, pets allowed)
const DESTINATIONS: &[(&str, &str, bool, bool)] = &[
    ("Cartagena", "50", true, true),
    ("Londres", "100", false, false),
    ("Madrid", "80", false, true),
    ("San Andres", "35.50", true, true),
];

/// (flight number, origin, base price, destination, capacity)
const FLIGHTS: &[(&str, &str, &str, &str, i32)] = &[
    ("CT-123", "Bogota", "1000", "Cartagena", 180),
    ("CT-124", "Medellin", "850", "Cartagena", 150),
    ("LON-99", "Bogota", "2000", "Londres", 250),
    ("MAD-7", "Bogota", "1500", "Madrid", 220),
    ("ADZ-10", "Cali", "420.90", "San Andres", 120),
];

/// Creates whatever part of the demo catalog is missing. Returns how many rows it created.
pub async fn load(channel: Channel) -> Result<usize, tonic::Status> {
    let mut client = FlightServiceClient::new(channel);
    let mut created = 0;
    for (name, tax, is_promotion, allows_pets) in DESTINATIONS {
        let request = CreateDestinationRequest {
            name: (*name).to_owned(),
            tax_amount: Some(Decimal {
                value: (*tax).to_owned(),
            }),
            is_promotion: *is_promotion,
            allows_pets: Some(*allows_pets),
            description: None,
        };
        created += usize::from(ok_unless_exists(client.create_destination(request).await)?);
    }
    for (number, origin, price, destination, capacity) in FLIGHTS {
        let destination = client
            .find_destination_by_name(FindDestinationByNameRequest {
                name: (*destination).to_owned(),
            })
            .await?
            .into_inner();
        let request = CreateFlightRequest {
            flight_number: (*number).to_owned(),
            origin: (*origin).to_owned(),
            base_price: Some(Decimal {
                value: (*price).to_owned(),
            }),
            destination_id: destination.id,
            capacity: Some(*capacity),
        };
        created += usize::from(ok_unless_exists(client.create_flight(request).await)?);
    }
    Ok(created)
}

/// `true` when created, `false` when it already existed.
fn ok_unless_exists<T>(result: Result<T, tonic::Status>) -> Result<bool, tonic::Status> {
    match result {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::AlreadyExists => Ok(false),
        Err(status) => Err(status),
    }
}
