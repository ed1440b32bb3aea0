//! Rebuilding the statistics from the bookings (the source of truth), for when Redis lost them.
//!
//! 1. Take the rebuild lock (one rebuild at a time) and clear any leftover fresh keyspace.
//! 2. Set `stats:rebuild:active`: from now on every event the consumers apply also goes into the
//!    fresh keyspace (`rebuild:` infix), deduplicated there by its own bitmaps.
//! 3. Stream every booking from the bookings service and apply it to the fresh keyspace as facts
//!    (created; cancelled too if it is) — the same plans the consumer applies, so a booking that
//!    is both streamed and consumed meanwhile counts once.
//! 4. Swap: one Lua script renames every fresh statistic over the live one and clears the flag.
//!
//! Notifications and dead letters are not derived from bookings and are left as they are.

use std::time::{SystemTime, UNIX_EPOCH};

use flightmesh_proto::bookings::StreamBookingSnapshotsRequest;
use flightmesh_proto::bookings::booking_service_client::BookingServiceClient;
use flightmesh_runtime::channel::MeshChannel;
use redis::AsyncCommands;

use crate::apply::{self, snapshot_plan};
use crate::keys::{self, Keys};
use crate::redis_store::{Redis, RedisError};

/// How long the lock lives if a rebuild dies without releasing it.
const LOCK_SECONDS: u64 = 900;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Bookings read from the bookings service.
    pub bookings_read: i64,
    /// Facts (creations and cancellations) applied to the fresh statistics.
    pub events_applied: i64,
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Another rebuild holds the lock.
    #[error("a rebuild is already running")]
    AlreadyRunning,
    /// Redis failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The bookings service failed.
    #[error("reading the bookings failed: {0}")]
    Bookings(#[from] tonic::Status),
    /// A stored booking could not be turned into statistics.
    #[error("booking {0} cannot be counted: {1}")]
    Booking(i64, String),
}

impl From<redis::RedisError> for RebuildError {
    fn from(err: redis::RedisError) -> Self {
        Self::Redis(RedisError(err))
    }
}

/// Renames the fresh statistics over the live ones and clears the rebuild flag, atomically.
/// ARGV: prefix, infix, the number n of fact types, the n fact types, then the statistic
/// suffixes; destination keys and applied-fact shards are found from their sets.
const SWAP_LUA: &str = r"
local prefix, infix = ARGV[1], ARGV[2]
local fresh = prefix .. infix
local nfacts = tonumber(ARGV[3])
local suffixes = {}
for i = 4 + nfacts, #ARGV do table.insert(suffixes, ARGV[i]) end
local names = {}
for _, n in ipairs(redis.call('SMEMBERS', prefix .. 'stats:destination_names')) do names[n] = true end
for _, n in ipairs(redis.call('SMEMBERS', fresh .. 'stats:destination_names')) do names[n] = true end
for n, _ in pairs(names) do table.insert(suffixes, 'stats:destination:' .. n) end
for i = 4, 3 + nfacts do
  local fact = ARGV[i]
  local blocks = {}
  for _, b in ipairs(redis.call('SMEMBERS', prefix .. 'stats:applied_blocks:' .. fact)) do blocks[b] = true end
  for _, b in ipairs(redis.call('SMEMBERS', fresh .. 'stats:applied_blocks:' .. fact)) do blocks[b] = true end
  for b, _ in pairs(blocks) do table.insert(suffixes, 'stats:applied:' .. fact .. ':' .. b) end
end
for _, suffix in ipairs(suffixes) do
  if redis.call('EXISTS', fresh .. suffix) == 1 then
    redis.call('RENAME', fresh .. suffix, prefix .. suffix)
  else
    redis.call('DEL', prefix .. suffix)
  end
end
redis.call('DEL', prefix .. 'stats:rebuild:active')
return #suffixes
";

/// Releases the lock only if this rebuild still holds it.
const UNLOCK_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Recomputes every statistic from the bookings and swaps the result in.
pub async fn rebuild(
    redis: &Redis,
    keys: &Keys,
    mut bookings: BookingServiceClient<MeshChannel>,
    log_cap: u32,
) -> Result<Report, RebuildError> {
    let mut conn = redis.conn().await?;
    let token = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let locked: bool = redis::cmd("SET")
        .arg(keys.key(keys::REBUILD_LOCK))
        .arg(&token)
        .arg("NX")
        .arg("EX")
        .arg(LOCK_SECONDS)
        .query_async::<Option<String>>(&mut conn)
        .await?
        .is_some();
    if !locked {
        return Err(RebuildError::AlreadyRunning);
    }
    let fresh = keys.fresh();
    let result = async {
        delete_matching(&mut conn, &format!("{}*", fresh.prefix())).await?;
        let () = conn
            .set(keys.key(keys::REBUILD_ACTIVE), keys::REBUILD_INFIX)
            .await?;
        let report = replay_bookings(&mut conn, &fresh, &mut bookings, log_cap).await?;
        let swap_script = redis::Script::new(SWAP_LUA);
        let mut swap = swap_script.prepare_invoke();
        swap.arg(keys.prefix())
            .arg(keys::REBUILD_INFIX)
            .arg(keys::REBUILT_FACTS.len());
        for fact in keys::REBUILT_FACTS {
            swap.arg(*fact);
        }
        for suffix in keys::REBUILT {
            swap.arg(*suffix);
        }
        let _: i64 = swap.invoke_async(&mut conn).await?;
        // What consumers wrote to the fresh keyspace beyond the statistics (notifications).
        delete_matching(&mut conn, &format!("{}*", fresh.prefix())).await?;
        Ok::<_, RebuildError>(report)
    }
    .await;
    if result.is_err() {
        let _: Result<(), _> = conn.del(keys.key(keys::REBUILD_ACTIVE)).await;
    }
    let _: Result<i64, _> = redis::Script::new(UNLOCK_LUA)
        .key(keys.key(keys::REBUILD_LOCK))
        .arg(&token)
        .invoke_async(&mut conn)
        .await;
    let report = result?;
    tracing::info!(
        bookings = report.bookings_read,
        facts = report.events_applied,
        "statistics rebuilt"
    );
    Ok(report)
}

/// Streams every booking and applies it to `fresh` as facts.
async fn replay_bookings(
    conn: &mut redis::aio::ConnectionManager,
    fresh: &Keys,
    bookings: &mut BookingServiceClient<MeshChannel>,
    log_cap: u32,
) -> Result<Report, RebuildError> {
    let mut stream = bookings
        .stream_booking_snapshots(StreamBookingSnapshotsRequest { after_id: 0 })
        .await?
        .into_inner();
    let mut report = Report::default();
    while let Some(snapshot) = stream.message().await? {
        report.bookings_read += 1;
        let facts: &[bool] = if snapshot.status == "cancelled" {
            &[true, false]
        } else {
            &[true]
        };
        for &created in facts {
            let plan = snapshot_plan(&snapshot, created, false, None)
                .map_err(|poison| RebuildError::Booking(snapshot.booking_id, poison.0))?;
            report.events_applied += i64::from(apply::apply(conn, fresh, &plan, log_cap).await?);
        }
    }
    Ok(report)
}

/// Deletes every key matching `pattern` (SCAN, in batches).
async fn delete_matching(
    conn: &mut redis::aio::ConnectionManager,
    pattern: &str,
) -> Result<(), RebuildError> {
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        if !found.is_empty() {
            let _: i64 = conn.del(found).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
