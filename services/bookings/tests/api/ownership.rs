//! Ownership enforced by the bookings service itself, over gRPC without the gateway (ADR 0010):
//! a caller inside the mesh meets the same rules as a client of the REST API.

use flightmesh::testing::TestMesh;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_proto::bookings::{
    Booking, CancelBookingRequest, CreateBookingRequest, GetBookingRequest, GetSeatUsageRequest,
    ListBookingEventsRequest, ListBookingsRequest, StreamBookingSnapshotsRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Request};

/// Who calls: `(user id, role)` as the gateway forwards them, or nobody.
type Who = Option<(&'static str, &'static str)>;
const ANA: Who = Some(("7", "user"));
const LUIS: Who = Some(("8", "user"));
const ADMIN: Who = Some(("1", "admin"));
const NOBODY: Who = None;

fn request<T>(message: T, who: Who) -> Request<T> {
    let mut request = Request::new(message);
    if let Some((user_id, role)) = who {
        request
            .metadata_mut()
            .insert("x-user-id", user_id.parse().unwrap());
        request
            .metadata_mut()
            .insert("x-user-role", role.parse().unwrap());
    }
    request
}

/// A mesh whose bookings service runs the production policy (the gateway stays compatible, so
/// the catalog can be seeded through it), a flight, and a client of bookings.
async fn production() -> (TestMesh, i64, BookingServiceClient<Channel>) {
    let mesh = TestMesh::start_with(|env, _| env.set("BOOKINGS_ACCESS_POLICY", "production")).await;
    let flight = mesh.cartagena_flight(100).await;
    let client = BookingServiceClient::new(mesh.channel(mesh.addrs.bookings).await);
    (mesh, flight, client)
}

async fn create(
    client: &mut BookingServiceClient<Channel>,
    flight: i64,
    name: &str,
    who: Who,
) -> Result<Booking, tonic::Status> {
    let message = CreateBookingRequest {
        passenger_name: name.into(),
        passenger_age: 30,
        flight_id: flight,
        ..Default::default()
    };
    client
        .create_booking(request(message, who))
        .await
        .map(tonic::Response::into_inner)
}

async fn list(client: &mut BookingServiceClient<Channel>, who: Who) -> Vec<i64> {
    let mut ids: Vec<i64> = client
        .list_bookings(request(ListBookingsRequest::default(), who))
        .await
        .unwrap()
        .into_inner()
        .bookings
        .iter()
        .map(|b| b.id)
        .collect();
    ids.sort_unstable();
    ids
}

fn code_and_message(status: &tonic::Status) -> (Code, &str) {
    (status.code(), status.message())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_caller_gets_only_its_own_bookings_under_the_production_policy() {
    let (mesh, flight, mut client) = production().await;
    let anas = create(&mut client, flight, "Ana", ANA).await.unwrap().id;
    let luiss = create(&mut client, flight, "Luis", LUIS).await.unwrap().id;

    // Another user's booking is NOT_FOUND, exactly as a missing one; cancelling it changes nothing.
    let not_found = (Code::NotFound, "Reserva no encontrada.");
    for id in [anas, 999_999_999] {
        let err = client
            .get_booking(request(GetBookingRequest { id }, LUIS))
            .await
            .unwrap_err();
        assert_eq!(code_and_message(&err), not_found, "get {id}");
        let err = client
            .cancel_booking(request(CancelBookingRequest { id }, LUIS))
            .await
            .unwrap_err();
        assert_eq!(code_and_message(&err), not_found, "cancel {id}");
    }
    let mine = client
        .get_booking(request(GetBookingRequest { id: anas }, ANA))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (mine.status.as_str(), mine.passenger_name.as_str()),
        ("confirmed", "Ana")
    );
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.outbox WHERE event_type = 'booking.cancelled'")
            .await,
        0,
        "no cancellation was written"
    );

    // Lists are filtered by owner; the admin's is not.
    assert_eq!(list(&mut client, LUIS).await, [luiss]);
    assert_eq!(list(&mut client, ANA).await, [anas]);
    let mut both = vec![anas, luiss];
    both.sort_unstable();
    assert_eq!(list(&mut client, ADMIN).await, both);

    // The admin reads and cancels anyone's booking.
    let cancelled = client
        .cancel_booking(request(CancelBookingRequest { id: luiss }, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");

    // The event log names every passenger: admin-only.
    let err = client
        .list_booking_events(request(ListBookingEventsRequest::default(), ANA))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (Code::PermissionDenied, "Permisos insuficientes")
    );
    let events = client
        .list_booking_events(request(ListBookingEventsRequest::default(), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(events.total, 3, "two bookings and a cancellation");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_forwarded_identity_production_refuses_client_rpcs_but_serves_the_mesh() {
    let (mesh, flight, mut client) = production().await;
    let anas = create(&mut client, flight, "Ana", ANA).await.unwrap().id;

    // Every client RPC, called without an identity: (name, what it answered).
    let answers = [
        (
            "create",
            create(&mut client, flight, "Nadie", NOBODY).await.map(drop),
        ),
        (
            "list",
            client
                .list_bookings(request(ListBookingsRequest::default(), NOBODY))
                .await
                .map(drop),
        ),
        (
            "get",
            client
                .get_booking(request(GetBookingRequest { id: anas }, NOBODY))
                .await
                .map(drop),
        ),
        (
            "cancel",
            client
                .cancel_booking(request(CancelBookingRequest { id: anas }, NOBODY))
                .await
                .map(drop),
        ),
        (
            "events",
            client
                .list_booking_events(request(ListBookingEventsRequest::default(), NOBODY))
                .await
                .map(drop),
        ),
    ];
    for (rpc, answer) in answers {
        let err = answer.expect_err(rpc);
        assert_eq!(
            code_and_message(&err),
            (Code::Unauthenticated, "No autenticado"),
            "{rpc}"
        );
    }

    // The internal RPCs other services call carry no identity and stay open.
    let usage = client
        .get_seat_usage(request(
            GetSeatUsageRequest {
                flight_ids: vec![flight],
            },
            NOBODY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(usage.seats_taken.get(&flight), Some(&1));
    let mut snapshots = client
        .stream_booking_snapshots(request(
            StreamBookingSnapshotsRequest { after_id: 0 },
            NOBODY,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = snapshots.message().await.unwrap().expect("one snapshot");
    assert_eq!(first.booking_id, anas);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_never_replays_another_users_booking() {
    let (mesh, flight, mut client) = production().await;
    let keyed = |who: Who| {
        let mut request = request(
            CreateBookingRequest {
                passenger_name: "Ana".into(),
                passenger_age: 30,
                flight_id: flight,
                ..Default::default()
            },
            who,
        );
        request
            .metadata_mut()
            .insert("idempotency-key", "retry-1".parse().unwrap());
        request
    };
    let anas = client
        .create_booking(keyed(ANA))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_booking(keyed(ANA))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, anas.id, "Ana's retry replays her booking");
    // Luis, with the same key and body, gets a booking of his own.
    let luiss = client
        .create_booking(keyed(LUIS))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(luiss.id, anas.id);
    assert_eq!(list(&mut client, LUIS).await, [luiss.id]);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compatible_policy_leaves_every_booking_open_over_grpc() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    let mut client = BookingServiceClient::new(mesh.channel(mesh.addrs.bookings).await);
    let anas = create(&mut client, flight, "Ana", ANA).await.unwrap().id;
    let anonymous = create(&mut client, flight, "Nadie", NOBODY)
        .await
        .unwrap()
        .id;
    let seen = client
        .get_booking(request(GetBookingRequest { id: anas }, LUIS))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.id, anas);
    let mut both = vec![anas, anonymous];
    both.sort_unstable();
    assert_eq!(list(&mut client, LUIS).await, both);
    assert_eq!(list(&mut client, NOBODY).await, both);
    client
        .list_booking_events(request(ListBookingEventsRequest::default(), LUIS))
        .await
        .unwrap();
    mesh.stop().await;
}
