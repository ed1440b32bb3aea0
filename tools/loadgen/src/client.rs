//! One call of a scenario, over REST (through the gateway) or gRPC (straight to the services).
//! Every call reports an outcome label: the HTTP status, or the gRPC code name.

use std::time::Duration;

use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_proto::bookings::{CreateBookingRequest, ListBookingsRequest};
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{GetFlightRequest, ListFlightsRequest};
use flightmesh_proto::stats::stats_service_client::StatsServiceClient;
use flightmesh_proto::stats::{GetDestinationStatsRequest, GetGeneralStatsRequest};
use tonic::transport::{Channel, Endpoint};

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
        /// Pooled HTTP/1.1 client.
        http: reqwest::Client,
    },
    /// Straight to the services over gRPC.
    Grpc(Box<GrpcClients>),
}

/// gRPC clients of the services a scenario calls.
#[derive(Clone)]
pub struct GrpcClients {
    /// Bookings service.
    pub bookings: BookingServiceClient<Channel>,
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
        Ok(Self::Grpc(Box::new(GrpcClients {
            bookings: BookingServiceClient::new(connect(bookings_url)?.connect().await?),
            flights: FlightServiceClient::new(connect(flights_url)?.connect().await?),
            // Connected lazily: only the flow scenario reads statistics.
            stats: StatsServiceClient::new(connect(stats_url)?.connect_lazy()),
        })))
    }

    /// Books a seat.
    pub async fn book(&self, flight_id: i64, passenger: &str, age: i32, has_pet: bool) -> Outcome {
        match self {
            Self::Rest { base, http } => {
                let body = serde_json::json!({
                    "passenger_name": passenger, "passenger_age": age, "has_pet": has_pet, "flight_id": flight_id
                });
                match http
                    .post(format!("{base}/api/v1/bookings/"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Read the body: the connection is reused only once it is drained.
                        let _ = response.bytes().await;
                        Outcome::http(status)
                    }
                    Err(err) => Outcome::transport(&err),
                }
            }
            Self::Grpc(grpc) => Outcome::grpc(
                grpc.bookings
                    .clone()
                    .create_booking(CreateBookingRequest {
                        passenger_name: passenger.to_owned(),
                        passenger_age: age,
                        has_pet,
                        flight_id,
                    })
                    .await
                    .map(drop),
            ),
        }
    }

    /// Reads: a flight, or a page of flights, or a page of bookings, picked by `which`.
    pub async fn read(&self, which: u64, flight_id: i64) -> Outcome {
        match self {
            Self::Rest { base, http } => {
                let path = match which % 3 {
                    0 => format!("/api/v1/flights/{flight_id}"),
                    1 => "/api/v1/flights/?limit=20".to_owned(),
                    _ => "/api/v1/bookings/?limit=20".to_owned(),
                };
                get(http, &format!("{base}{path}")).await
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
            Self::Rest { base, http } => get(http, &format!("{base}/api/v1/flights/")).await,
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
            Self::Rest { base, http } => {
                let path = if which.is_multiple_of(2) {
                    "general"
                } else {
                    "destinations"
                };
                get(http, &format!("{base}/api/v1/stats/{path}")).await
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

/// A GET whose body is read to the end (the connection is reused only once it is drained).
async fn get(http: &reqwest::Client, url: &str) -> Outcome {
    match http.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .map(Duration::from_secs);
            let _ = response.bytes().await;
            Outcome {
                retry_after,
                ..Outcome::http(status)
            }
        }
        Err(err) => Outcome::transport(&err),
    }
}
