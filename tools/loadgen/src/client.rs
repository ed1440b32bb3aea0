//! One call of a scenario, over REST (through the gateway) or gRPC (straight to the services).
//! Every call reports an outcome label: the HTTP status, or the gRPC code name.

use std::sync::Arc;
use std::time::Duration;

use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_proto::bookings::{CreateBookingRequest, ListBookingsRequest};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{GetFlightRequest, ListFlightsRequest};
use flightmesh_proto::stats::stats_service_client::StatsServiceClient;
use flightmesh_proto::stats::{GetDestinationStatsRequest, GetGeneralStatsRequest};
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstEncoder;

use hyper::Method;

use crate::http1::{Answer, Http1};

/// What a call was: its label is counted, and only `ok` calls count as throughput.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `200`, `409`, `OK`, `Aborted`, `transport` …
    pub label: String,
    /// Whether the call did what was asked (a sold-out 409 is an answer, not a success).
    pub ok: bool,
    /// How long the answer asked the client to wait before its next call (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Outcome {
    fn http(status: u16) -> Self {
        Self {
            label: status.to_string(),
            ok: status == 200,
            retry_after: None,
        }
    }

    fn grpc(result: Result<(), tonic::Status>) -> Self {
        match result {
            Ok(()) => Self {
                label: "OK".into(),
                ok: true,
                retry_after: None,
            },
            Err(status) => Self {
                label: format!("{:?}", status.code()),
                ok: false,
                retry_after: None,
            },
        }
    }

    fn transport(err: &dyn std::fmt::Display) -> Self {
        Self {
            label: format!("transport: {err}"),
            ok: false,
            retry_after: None,
        }
    }
}

/// Where the load goes.
#[derive(Clone)]
pub enum Client {
    /// Through the REST gateway.
    Rest {
        /// `http://host:port`.
        base: String,
        /// Pooled HTTP/1.1 client (setup, and the load of an `https://` gateway).
        http: reqwest::Client,
        /// The load's lean HTTP/1.1 client, for an `http://` gateway.
        http1: Option<Arc<Http1>>,
    },
    /// Straight to the services over gRPC.
    Grpc(Box<GrpcClients>),
}

/// gRPC clients of the services a scenario calls.
#[derive(Clone)]
pub struct GrpcClients {
    /// Bookings service.
    pub bookings: BookingServiceClient<Channel>,
    /// Bookings service, for the calls whose answer is dropped unread ([`DropAnswer`]).
    pub bookings_calls: tonic::client::Grpc<Channel>,
    /// Flights service.
    pub flights: FlightServiceClient<Channel>,
    /// Stats worker.
    pub stats: StatsServiceClient<Channel>,
}

impl Client {
    /// A REST client for the gateway at `base`, keeping up to `connections` connections alive.
    #[must_use]
    pub fn rest(base: &str, connections: usize) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1024))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self::Rest {
            base: base.trim_end_matches('/').to_owned(),
            http,
            http1: Http1::new(base).map(Arc::new),
        }
    }

    /// A gRPC client: one HTTP/2 connection per service, multiplexing every worker's calls.
    pub async fn grpc(
        bookings_url: &str,
        flights_url: &str,
        stats_url: &str,
    ) -> Result<Self, tonic::transport::Error> {
        let connect = |url: &str| {
            Endpoint::from_shared(url.to_owned())
                .map(|e| e.tcp_nodelay(true).timeout(Duration::from_secs(30)))
        };
        let bookings = connect(bookings_url)?.connect().await?;
        Ok(Self::Grpc(Box::new(GrpcClients {
            bookings: BookingServiceClient::new(bookings.clone()),
            bookings_calls: tonic::client::Grpc::new(bookings),
            flights: FlightServiceClient::new(connect(flights_url)?.connect().await?),
            // Connected lazily: only the flow scenario reads statistics.
            stats: StatsServiceClient::new(connect(stats_url)?.connect_lazy()),
        })))
    }

    /// Books a seat.
    pub async fn book(&self, flight_id: i64, passenger: &str, age: i32, has_pet: bool) -> Outcome {
        match self {
            Self::Rest { base, http, http1 } => {
                let body = serde_json::json!({
                    "passenger_name": passenger, "passenger_age": age, "has_pet": has_pet, "flight_id": flight_id
                })
                .to_string();
                rest(
                    http,
                    http1.as_deref(),
                    base,
                    Method::POST,
                    "/api/v1/bookings/",
                    Some(body),
                )
                .await
            }
            Self::Grpc(grpc) => {
                let request = CreateBookingRequest {
                    passenger_name: passenger.to_owned(),
                    passenger_age: age,
                    has_pet,
                    flight_id,
                };
                let mut calls = grpc.bookings_calls.clone();
                let booked = async {
                    calls
                        .ready()
                        .await
                        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
                    calls
                        .unary(
                            tonic::Request::new(request),
                            hyper::http::uri::PathAndQuery::from_static(CREATE_BOOKING),
                            DropAnswer,
                        )
                        .await
                };
                Outcome::grpc(booked.await.map(drop))
            }
        }
    }

    /// Reads: a flight, or a page of flights, or a page of bookings, picked by `which`.
    pub async fn read(&self, which: u64, flight_id: i64) -> Outcome {
        match self {
            Self::Rest { base, http, http1 } => {
                let path = match which % 3 {
                    0 => format!("/api/v1/flights/{flight_id}"),
                    1 => "/api/v1/flights/?limit=20".to_owned(),
                    _ => "/api/v1/bookings/?limit=20".to_owned(),
                };
                rest(http, http1.as_deref(), base, Method::GET, &path, None).await
            }
            Self::Grpc(grpc) => Outcome::grpc(match which % 3 {
                0 => grpc
                    .flights
                    .clone()
                    .get_flight(GetFlightRequest { id: flight_id })
                    .await
                    .map(drop),
                1 => grpc
                    .flights
                    .clone()
                    .list_flights(ListFlightsRequest {
                        skip: None,
                        limit: Some(20),
                    })
                    .await
                    .map(drop),
                _ => grpc
                    .bookings
                    .clone()
                    .list_bookings(ListBookingsRequest {
                        skip: None,
                        limit: Some(20),
                    })
                    .await
                    .map(drop),
            }),
        }
    }

    /// The catalog's front page: every flight (the first page).
    pub async fn read_catalog(&self) -> Outcome {
        match self {
            Self::Rest { base, http, http1 } => {
                rest(
                    http,
                    http1.as_deref(),
                    base,
                    Method::GET,
                    "/api/v1/flights/",
                    None,
                )
                .await
            }
            Self::Grpc(grpc) => Outcome::grpc(
                grpc.flights
                    .clone()
                    .list_flights(ListFlightsRequest::default())
                    .await
                    .map(drop),
            ),
        }
    }

    /// Reads statistics: the general figures or the per-destination ones, picked by `which`.
    pub async fn read_stats(&self, which: u64) -> Outcome {
        match self {
            Self::Rest { base, http, http1 } => {
                let path = if which.is_multiple_of(2) {
                    "/api/v1/stats/general"
                } else {
                    "/api/v1/stats/destinations"
                };
                rest(http, http1.as_deref(), base, Method::GET, path, None).await
            }
            Self::Grpc(grpc) => {
                let mut stats = grpc.stats.clone();
                Outcome::grpc(if which.is_multiple_of(2) {
                    stats
                        .get_general_stats(GetGeneralStatsRequest {})
                        .await
                        .map(drop)
                } else {
                    stats
                        .get_destination_stats(GetDestinationStatsRequest {})
                        .await
                        .map(drop)
                })
            }
        }
    }
}

/// `method path` on the gateway (a JSON `body`, if any), read to the end: through the lean
/// client for an `http://` gateway, through reqwest otherwise.
async fn rest(
    http: &reqwest::Client,
    http1: Option<&Http1>,
    base: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Outcome {
    let answer = match http1 {
        Some(http1) => http1
            .send(method, path, body)
            .await
            .map_err(|err| Outcome::transport(&err)),
        None => reqwest_call(http, base, method, path, body).await,
    };
    match answer {
        Ok(answer) => Outcome {
            retry_after: answer.retry_after,
            ..Outcome::http(answer.status)
        },
        Err(outcome) => outcome,
    }
}

/// [`rest`] through reqwest, the body read to the end (the connection is reused only once it is
/// drained).
async fn reqwest_call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Answer, Outcome> {
    let request = http.request(method, format!("{base}{path}"));
    let request = match body {
        Some(body) => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body),
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|err| Outcome::transport(&err))?;
    let answer = Answer::of(response.status().as_u16(), response.headers());
    let _ = response.bytes().await;
    Ok(answer)
}

/// The bookings service's `CreateBooking` method.
const CREATE_BOOKING: &str = "/flightmesh.bookings.v1.BookingService/CreateBooking";

/// Requests encoded by prost; answers read to their end and dropped unparsed, as the REST client
/// drops its bodies and pgbench its rows: the load measures the service, not the client's
/// decoding of the answer (7.5% of the load generator's CPU per gRPC booking in its profile).
#[derive(Debug, Clone, Copy)]
struct DropAnswer;

impl Codec for DropAnswer {
    type Encode = CreateBookingRequest;
    type Decode = ();
    type Encoder = ProstEncoder<CreateBookingRequest>;
    type Decoder = DropAnswer;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Decoder for DropAnswer {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        use hyper::body::Buf as _;
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
