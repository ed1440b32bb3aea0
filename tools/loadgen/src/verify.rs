//! "Nothing lost, nothing counted twice": the statistics in Redis against the same figures
//! computed from the bookings in PostgreSQL, the source of truth.
//!
//! Every booking created applies `booking.created` once and every cancellation
//! `booking.cancelled` once, with opposite amounts, so the counters in Redis equal sums over the
//! *confirmed* bookings, the applied-event bitmaps hold one bit per booking (and per cancelled
//! booking), and the candy log has a line per infant booking plus one per infant cancellation.
//! A lost event leaves a figure short; an event applied twice leaves it long.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::AsyncCommands;
use rust_decimal::Decimal;

/// The figures both sides must agree on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// `booking.created` events applied (bookings made).
    pub created: i64,
    /// `booking.cancelled` events applied (bookings cancelled).
    pub cancelled: i64,
    /// Revenue of confirmed bookings, in cents.
    pub revenue_cents: i64,
    /// Confirmed bookings with a pet.
    pub pets: i64,
    /// Confirmed bookings of passengers under 12.
    pub infants: i64,
    /// 5.00 per infant among confirmed bookings.
    pub candy_cost: Decimal,
    /// Candy log lines: one per infant booking, one more per infant cancellation.
    pub candy_lines: i64,
    /// Confirmed bookings per destination (destinations at zero left out).
    pub destinations: BTreeMap<String, i64>,
}

/// Why figures could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// PostgreSQL.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// Redis.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis value that is not a number.
    #[error("Redis key {key} holds {value:?}, not a number")]
    NotANumber {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
    },
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    created: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
    #[diesel(sql_type = BigInt)]
    revenue_cents: i64,
    #[diesel(sql_type = BigInt)]
    pets: i64,
    #[diesel(sql_type = BigInt)]
    infants: i64,
    #[diesel(sql_type = BigInt)]
    candy_lines: i64,
}

#[derive(QueryableByName)]
struct PerDestination {
    #[diesel(sql_type = Text)]
    destination_name: String,
    #[diesel(sql_type = BigInt)]
    bookings: i64,
}

/// The figures as PostgreSQL's `bookings.bookings` implies them.
///
/// # Errors
/// If PostgreSQL cannot be reached or queried.
pub async fn from_postgres(database_url: &str) -> Result<Figures, VerifyError> {
    let pg = |err: &dyn fmt::Display| VerifyError::Postgres(err.to_string());
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| pg(&e))?;
    let totals: Totals = diesel::sql_query(
        "SELECT count(*) AS created,
                count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                COALESCE(sum(total_price * 100) FILTER (WHERE status = 'confirmed'), 0)::bigint
                    AS revenue_cents,
                count(*) FILTER (WHERE status = 'confirmed' AND has_pet) AS pets,
                count(*) FILTER (WHERE status = 'confirmed' AND passenger_age < 12) AS infants,
                (count(*) FILTER (WHERE passenger_age < 12)
                 + count(*) FILTER (WHERE passenger_age < 12 AND status = 'cancelled'))
                    AS candy_lines
         FROM bookings.bookings",
    )
    .get_result(&mut conn)
    .await
    .map_err(|e| pg(&e))?;
    let destinations: Vec<PerDestination> = diesel::sql_query(
        "SELECT destination_name, count(*) AS bookings FROM bookings.bookings
         WHERE status = 'confirmed' GROUP BY destination_name",
    )
    .load(&mut conn)
    .await
    .map_err(|e| pg(&e))?;
    Ok(Figures {
        created: totals.created,
        cancelled: totals.cancelled,
        revenue_cents: totals.revenue_cents,
        pets: totals.pets,
        infants: totals.infants,
        candy_cost: Decimal::from(totals.infants) * Decimal::from(5),
        candy_lines: totals.candy_lines,
        destinations: destinations
            .into_iter()
            .map(|row| (row.destination_name, row.bookings))
            .collect(),
    })
}

/// The figures in Redis under `prefix` (the stats worker's `REDIS_KEY_PREFIX`).
///
/// # Errors
/// If Redis cannot be reached, or a counter is not a number.
pub async fn from_redis(redis_url: &str, prefix: &str) -> Result<Figures, VerifyError> {
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let key = |suffix: &str| format!("{prefix}{suffix}");
    let whole = |d: Decimal| i64::try_from(d.trunc()).unwrap_or(i64::MIN);
    let revenue_cents = whole(number(&mut conn, key("stats:total_revenue_cents")).await?);
    let pets = whole(number(&mut conn, key("stats:total_pet_bookings")).await?);
    let infants = whole(number(&mut conn, key("stats:total_infant_count")).await?);
    let candy_cost = number(&mut conn, key("stats:total_candy_cost"))
        .await?
        .normalize();
    let names: Vec<String> = conn.smembers(key("stats:destination_names")).await?;
    let mut destinations = BTreeMap::new();
    for name in names {
        let count = whole(number(&mut conn, key(&format!("stats:destination:{name}"))).await?);
        if count != 0 {
            destinations.insert(name, count);
        }
    }
    let created = applied_facts(&mut conn, prefix, "booking.created").await?;
    let cancelled = applied_facts(&mut conn, prefix, "booking.cancelled").await?;
    // Lines ever logged (the list itself is capped); a log without a counter, by its length.
    let counted: Option<i64> = conn.get(key("stats:candy_log_count")).await?;
    let candy_lines = match counted {
        Some(counted) => counted,
        None => conn.llen(key("logs:candy_distribution")).await?,
    };
    Ok(Figures {
        created,
        cancelled,
        revenue_cents,
        pets,
        infants,
        candy_cost,
        candy_lines,
        destinations,
    })
}

/// Facts of `event_type` marked applied: the bits of every shard (`stats:applied:<type>:<block>`,
/// listed in `stats:applied_blocks:<type>`) plus those of the unsharded bitmap of earlier
/// versions (never both for one fact).
async fn applied_facts(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    event_type: &str,
) -> Result<i64, VerifyError> {
    let blocks: Vec<String> = conn
        .smembers(format!("{prefix}stats:applied_blocks:{event_type}"))
        .await?;
    let mut total: i64 = redis::cmd("BITCOUNT")
        .arg(format!("{prefix}stats:applied:{event_type}"))
        .query_async(conn)
        .await?;
    for block in blocks {
        let bits: i64 = redis::cmd("BITCOUNT")
            .arg(format!("{prefix}stats:applied:{event_type}:{block}"))
            .query_async(conn)
            .await?;
        total += bits;
    }
    Ok(total)
}

/// A counter (absent reads as zero).
async fn number(
    conn: &mut redis::aio::MultiplexedConnection,
    key: String,
) -> Result<Decimal, VerifyError> {
    let value: Option<String> = conn.get(&key).await?;
    match value {
        None => Ok(Decimal::ZERO),
        Some(text) => text
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| VerifyError::NotANumber { key, value: text }),
    }
}

/// PostgreSQL's figures next to Redis's.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// From the bookings.
    pub postgres: Figures,
    /// From the statistics.
    pub redis: Figures,
}

impl Comparison {
    /// Whether every figure agrees.
    #[must_use]
    pub fn agrees(&self) -> bool {
        let mut pg = self.postgres.clone();
        pg.candy_cost = pg.candy_cost.normalize();
        pg == self.redis
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pg, redis) = (&self.postgres, &self.redis);
        let rows: [(&str, String, String); 7] = [
            (
                "booking.created applied",
                pg.created.to_string(),
                redis.created.to_string(),
            ),
            (
                "booking.cancelled applied",
                pg.cancelled.to_string(),
                redis.cancelled.to_string(),
            ),
            (
                "revenue (cents)",
                pg.revenue_cents.to_string(),
                redis.revenue_cents.to_string(),
            ),
            ("pet bookings", pg.pets.to_string(), redis.pets.to_string()),
            ("infants", pg.infants.to_string(), redis.infants.to_string()),
            (
                "candy cost",
                pg.candy_cost.normalize().to_string(),
                redis.candy_cost.to_string(),
            ),
            (
                "candy log lines",
                pg.candy_lines.to_string(),
                redis.candy_lines.to_string(),
            ),
        ];
        writeln!(f, "{:<28} {:>14} {:>14}", "figure", "postgresql", "redis")?;
        for (name, a, b) in rows {
            let mark = if a == b { "" } else { "  <- differs" };
            writeln!(f, "{name:<28} {a:>14} {b:>14}{mark}")?;
        }
        let same = pg.destinations == redis.destinations;
        writeln!(
            f,
            "{:<28} {:>14} {:>14}{}",
            "destinations (bookings)",
            pg.destinations.values().sum::<i64>(),
            redis.destinations.values().sum::<i64>(),
            if same { "" } else { "  <- differs" }
        )
    }
}

/// Compares until both sides agree (events are applied asynchronously) or `wait` has passed;
/// returns the last comparison.
///
/// # Errors
/// If either side cannot be read.
pub async fn settle(
    database_url: &str,
    redis_url: &str,
    prefix: &str,
    wait: Duration,
) -> Result<Comparison, VerifyError> {
    let deadline = Instant::now() + wait;
    loop {
        let comparison = Comparison {
            postgres: from_postgres(database_url).await?,
            redis: from_redis(redis_url, prefix).await?,
        };
        if comparison.agrees() || Instant::now() >= deadline {
            return Ok(comparison);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
