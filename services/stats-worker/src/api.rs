//! The `flightmesh.stats.v1.StatsService` handlers: reads of the Redis statistics (UNAVAILABLE
//! when Redis is down, never INTERNAL), the taxes of a destination (asking flights for its tax)
//! and the rebuild.

use std::sync::Arc;

use flightmesh_proto::Reply;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_proto::flights::FindDestinationByNameRequest;
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::money::{decimal_field, money};
use flightmesh_proto::stats as pb;
use flightmesh_proto::validate::Validate;
use flightmesh_runtime::channel::MeshChannel;
use flightmesh_runtime::status::{Fault, FieldViolations, page};
use redis::AsyncCommands;
use rust_decimal::Decimal;
use tonic::{Code, Request, Response, Status};

use crate::keys::{self, Keys};
use crate::rebuild::{self, RebuildError};
use crate::redis_store::{Redis, RedisError};

/// Candy log entries answered at most (the total count is always exact).
const MAX_CANDY_ENTRIES: isize = 1000;
const DEFAULT_LIST: i32 = 20;

/// The stats API.
pub struct Stats {
    redis: Arc<Redis>,
    keys: Keys,
    flights: FlightServiceClient<MeshChannel>,
    bookings: BookingServiceClient<MeshChannel>,
    log_cap: u32,
}

impl Stats {
    pub fn new(
        redis: Arc<Redis>,
        keys: Keys,
        flights: MeshChannel,
        bookings: MeshChannel,
        log_cap: u32,
    ) -> Self {
        Self {
            redis,
            keys,
            flights: FlightServiceClient::new(flights),
            bookings: BookingServiceClient::new(bookings),
            log_cap,
        }
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, Status> {
        self.redis.conn().await.map_err(|err| unavailable(&err))
    }

    /// The values of the keys `names`, in their order (`None` where a key is absent).
    async fn values(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        names: &[&str],
    ) -> Result<Vec<Option<String>>, Status> {
        conn.mget(names.iter().map(|k| self.keys.key(k)).collect::<Vec<_>>())
            .await
            .map_err(redis_status)
    }

    /// The newest `limit` entries of the log list `list` (newest first), each as its JSON, and
    /// the sum of its `counters`: the total ever logged (the list keeps only the newest
    /// LOG_LIST_CAP).
    async fn log_page(
        &self,
        list: &str,
        counters: &[&str],
        limit: isize,
    ) -> Result<(Vec<prost_types::Struct>, i64), Status> {
        let mut conn = self.conn().await?;
        let entries: Vec<String> = conn
            .lrange(self.keys.key(list), 0, limit - 1)
            .await
            .map_err(redis_status)?;
        let totals = self.values(&mut conn, counters).await?;
        Ok((
            entries.iter().map(|e| entry(e)).collect(),
            totals.iter().map(|v| count(v.as_ref())).sum(),
        ))
    }
}

fn unavailable(err: &RedisError) -> Status {
    tracing::warn!(error = %err, "redis unavailable");
    Status::unavailable("Las estadisticas no estan disponibles. Intente de nuevo.")
}

impl From<RedisError> for Status {
    fn from(err: RedisError) -> Self {
        unavailable(&err)
    }
}

fn redis_status(err: redis::RedisError) -> Status {
    unavailable(&RedisError(err))
}

/// A counter stored by INCRBYFLOAT ("3", "3.0", absent).
fn count(value: Option<&String>) -> i64 {
    value
        .and_then(|v| v.parse::<Decimal>().ok())
        .and_then(|d| d.round().to_string().parse().ok())
        .unwrap_or(0)
}

/// An amount stored by INCRBYFLOAT, exact to the cent (INCRBYFLOAT keeps 17 significant
/// digits, far more than any revenue needs).
fn amount(value: Option<&String>) -> Decimal {
    value
        .and_then(|v| v.parse::<Decimal>().ok())
        .map(|d| d.round_dp(2))
        .unwrap_or_default()
}

/// A JSON log entry as a Struct (a non-JSON entry is kept as `{"raw": …}`).
fn entry(text: &str) -> prost_types::Struct {
    let json = serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({ "raw": text }));
    flightmesh_proto::json::to_struct(&json)
}

/// A list request's `limit`, after the protos' rules for `request`.
fn list_limit(request: &impl Validate, limit: Option<i32>) -> Result<isize, Status> {
    FieldViolations::check(request)?;
    Ok(isize::try_from(page(None, limit, DEFAULT_LIST).limit).unwrap_or(isize::MAX))
}

#[tonic::async_trait]
impl pb::stats_service_server::StatsService for Stats {
    async fn get_general_stats(
        &self,
        _request: Request<pb::GetGeneralStatsRequest>,
    ) -> Reply<pb::GeneralStats> {
        let mut conn = self.conn().await?;
        let names = [
            keys::TOTAL_REVENUE_CENTS,
            keys::TOTAL_REVENUE,
            keys::TOTAL_PET_BOOKINGS,
            keys::TOTAL_INFANT_COUNT,
            keys::TOTAL_CANDY_COST,
        ];
        let values = self.values(&mut conn, &names).await?;
        // Exact cents when flightmesh kept them; the float key otherwise (data of the old system).
        let revenue = values[0]
            .as_ref()
            .and_then(|cents| cents.parse::<i64>().ok())
            .map_or_else(
                || amount(values[1].as_ref()),
                |cents| Decimal::new(cents, 2),
            );
        Ok(Response::new(pb::GeneralStats {
            total_revenue: money(revenue),
            total_pet_bookings: count(values[2].as_ref()),
            total_infant_count: count(values[3].as_ref()),
            total_candy_cost: money(amount(values[4].as_ref())),
        }))
    }

    async fn get_destination_stats(
        &self,
        _request: Request<pb::GetDestinationStatsRequest>,
    ) -> Reply<pb::DestinationStats> {
        let mut conn = self.conn().await?;
        let names: Vec<String> = conn
            .smembers(self.keys.key(keys::DESTINATION_NAMES))
            .await
            .map_err(redis_status)?;
        let mut destinations = Vec::with_capacity(names.len());
        if !names.is_empty() {
            let values: Vec<Option<String>> = conn
                .mget(
                    names
                        .iter()
                        .map(|n| self.keys.destination(n))
                        .collect::<Vec<_>>(),
                )
                .await
                .map_err(redis_status)?;
            for (name, value) in names.into_iter().zip(values) {
                let total = count(value.as_ref());
                if total > 0 {
                    destinations.push(pb::DestinationBookings {
                        destination: name,
                        total_bookings: total,
                    });
                }
            }
        }
        // Most booked first; ties by name so the answer is stable.
        destinations.sort_by(|a, b| {
            b.total_bookings
                .cmp(&a.total_bookings)
                .then_with(|| a.destination.cmp(&b.destination))
        });
        Ok(Response::new(pb::DestinationStats {
            most_popular: destinations.first().map(|d| d.destination.clone()),
            destinations,
        }))
    }

    async fn get_destination_taxes(
        &self,
        request: Request<pb::GetDestinationTaxesRequest>,
    ) -> Reply<pb::DestinationTaxes> {
        let asked = request.into_inner().destination_name;
        let not_found = || Status::not_found(format!("Destino '{asked}' no encontrado"));
        let mut lookup = Request::new(FindDestinationByNameRequest {
            name: asked.clone(),
        });
        lookup.set_timeout(std::time::Duration::from_secs(2));
        let destination = match self.flights.clone().find_destination_by_name(lookup).await {
            Ok(found) => found.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Err(not_found()),
            Err(status) => {
                let message = "El servicio de vuelos no esta disponible. Intente de nuevo.";
                return Err(Fault::peer_unavailable("flights", message, status).into());
            }
        };
        // The catalog answered a tax that is not money: its cause is logged, never sent.
        let tax = decimal_field(destination.tax_amount.as_ref())
            .map_err(|err| flightmesh_runtime::status::internal(&err))?;
        let mut conn = self.conn().await?;
        let bookings: Option<String> = conn
            .get(self.keys.destination(&destination.name))
            .await
            .map_err(redis_status)?;
        let bookings = count(bookings.as_ref()).max(0);
        // Checked: a corrupted counter must not panic the handler (Decimal's `*` does on overflow).
        let collected = tax.checked_mul(Decimal::from(bookings)).ok_or_else(|| {
            tracing::error!(%tax, bookings, "tax collected overflows");
            Status::internal(flightmesh_runtime::status::INTERNAL_MESSAGE)
        })?;
        Ok(Response::new(pb::DestinationTaxes {
            destination: destination.name,
            tax_amount: money(tax),
            total_bookings: bookings,
            total_tax_collected: money(collected),
        }))
    }

    async fn get_candy_log(
        &self,
        _request: Request<pb::GetCandyLogRequest>,
    ) -> Reply<pb::CandyLog> {
        let mut conn = self.conn().await?;
        let key = self.keys.key(keys::CANDY_LOG);
        let entries: Vec<String> = conn
            .lrange(&key, 0, MAX_CANDY_ENTRIES - 1)
            .await
            .map_err(redis_status)?;
        // Every line ever logged, from its counter (the list keeps only the newest
        // LOG_LIST_CAP); a log written before the counter existed is counted by its length.
        let counted: Option<String> = conn
            .get(self.keys.key(keys::CANDY_LOG_COUNT))
            .await
            .map_err(redis_status)?;
        let total = match counted {
            Some(counted) => count(Some(&counted)),
            None => conn.llen(&key).await.map_err(redis_status)?,
        };
        Ok(Response::new(pb::CandyLog {
            entries,
            total_count: total,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Reply<pb::DeadLetters> {
        let limit = list_limit(request.get_ref(), request.get_ref().limit)?;
        let (entries, total) = self
            .log_page(keys::DEAD_LETTERS, &[keys::DEAD_LETTER_COUNT], limit)
            .await?;
        Ok(Response::new(pb::DeadLetters {
            count: total,
            entries,
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Reply<pb::Notifications> {
        let limit = list_limit(request.get_ref(), request.get_ref().limit)?;
        // Both kinds of message sent count: notifications and promotion alerts.
        let (entries, total) = self
            .log_page(
                keys::NOTIFICATIONS,
                &[keys::NOTIFICATIONS_SENT, keys::PROMOTION_ALERTS_SENT],
                limit,
            )
            .await?;
        Ok(Response::new(pb::Notifications {
            total_sent: total,
            notifications: entries,
        }))
    }

    async fn rebuild_stats(
        &self,
        _request: Request<pb::RebuildStatsRequest>,
    ) -> Reply<pb::RebuildStatsResponse> {
        match rebuild::rebuild(&self.redis, &self.keys, self.bookings.clone(), self.log_cap).await {
            Ok(report) => Ok(Response::new(pb::RebuildStatsResponse {
                bookings_read: report.bookings_read,
                events_applied: report.events_applied,
            })),
            Err(RebuildError::AlreadyRunning) => Err(Status::aborted(
                "Ya hay una reconstruccion de estadisticas en curso.",
            )),
            Err(RebuildError::Redis(err)) => Err(unavailable(&err)),
            Err(RebuildError::Bookings(status)) => {
                let message = "El servicio de reservas no esta disponible. Intente de nuevo.";
                Err(Fault::peer_unavailable("bookings", message, status).into())
            }
            Err(err @ RebuildError::Booking(..)) => Err(flightmesh_runtime::status::internal(&err)),
        }
    }
}
