//! Applying an event to the statistics, atomically and at most once.
//!
//! An event becomes a [`Plan`]: the fact it records (`booking 42 was created`) and the Redis
//! operations of the contract (INCRBYFLOAT, LPUSH, …). One Lua script runs a plan:
//! 1. if the fact's bit is set, the event was applied before: nothing happens (a redelivery, a
//!    duplicate publish). Bits live in bitmaps sharded by id range ([`FactBit`]:
//!    `stats:applied:<event type>:<id >> 20>`, bit `id & 0xFFFFF`), so one key is at most
//!    128 KiB whatever the id; the unsharded bitmap of earlier versions is still read;
//! 2. every key is checked to have the type the operation needs — so an error never leaves half
//!    an event applied (Redis does not roll back a failing script);
//! 3. every operation runs (log lists are trimmed to the configured cap as they are pushed),
//!    then the bit is set.
//!
//! An event that cannot be represented — an id that is not positive or beyond
//! [`MAX_ENTITY_ID`], a price that is negative, beyond [`MAX_TOTAL_PRICE`] or overflows when
//! scaled to cents — is [`Poison`]: dead-lettered at once, never retried, never a panic.
//!
//! The natural key (entity id + event type) instead of the event id with a TTL: bookings are
//! created once and cancelled at most once, so this is the same "once" with no expiry window, one
//! bit per booking instead of a key per event, and a rebuild (which sees bookings, not events)
//! can mark what it counted. While a rebuild runs (`stats:rebuild:active` set), the script applies
//! the plan to the fresh keyspace too, with that keyspace's own bitmaps.

use chrono::{DateTime, SecondsFormat, Utc};
use flightmesh_proto::bookings::{BookingEvent, BookingSnapshot};
use flightmesh_proto::flights::DestinationEvent;
use flightmesh_proto::money::decimal_field;
use redis::aio::ConnectionLike;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;

use crate::keys::{self, Keys, applied_blocks_suffix, applied_suffix, destination_suffix};

/// What a passenger's candy costs the airline.
pub const CANDY_COST: &str = "5.0";
/// Passengers younger than this get candy.
pub const CANDY_AGE: i32 = 12;

/// Event types the worker understands.
pub const BOOKING_CREATED: &str = "booking.created";
/// A booking was cancelled.
pub const BOOKING_CANCELLED: &str = "booking.cancelled";
/// A destination was created.
pub const DESTINATION_CREATED: &str = "destination.created";
/// Every event type the worker applies.
pub const EVENT_TYPES: [&str; 3] = [BOOKING_CREATED, BOOKING_CANCELLED, DESTINATION_CREATED];

/// The largest entity id an event may carry: 2^48 − 1 (281 trillion). PostgreSQL's sequences
/// will not get there; an id beyond it is a forged or corrupted event, not a booking.
pub const MAX_ENTITY_ID: i64 = (1 << 48) - 1;
/// The largest total price a booking can have, 9 999 999 999.99: the bookings table stores it
/// as NUMERIC(12, 2). (999 999 999 999 hundredths = 232 × 2^32 + 3 567 587 327.)
pub const MAX_TOTAL_PRICE: Decimal = Decimal::from_parts(3_567_587_327, 232, 0, false, 2);
/// Ids per applied-fact bitmap: 2^20 bits, 128 KiB per key at most.
pub const FACT_BLOCK_BITS: u32 = 20;
/// Offsets the unsharded bitmaps of earlier versions could hold (Redis's SETBIT limit).
const LEGACY_OFFSET_LIMIT: i64 = 1 << 32;

/// A Redis operation of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    IncrByFloat,
    IncrBy,
    /// LPUSH, then LTRIM to the log cap.
    LPush,
    SAdd,
    /// Counts one more entry of the capped list named by the argument (a counter that starts
    /// from the list's length when it does not exist yet: lists written before counters did).
    CountEntry,
}

impl Op {
    fn command(self) -> &'static str {
        match self {
            Self::IncrByFloat => "INCRBYFLOAT",
            Self::IncrBy => "INCRBY",
            Self::LPush => "LPUSH",
            Self::SAdd => "SADD",
            Self::CountEntry => "COUNT",
        }
    }
}

/// Everything one event does to the statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The event type (names the applied-bitmap).
    pub event_type: &'static str,
    /// The entity the event is about (the bit in the bitmap).
    pub entity_id: i64,
    /// (operation, key without prefix, argument), in order.
    pub ops: Vec<(Op, String, String)>,
    /// When the event happened (for the lag metric).
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Why an event can never be applied: it goes to the dead-letter queue at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Poison(pub String);

/// Where the bit of an applied fact lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactBit {
    /// The shard: ids `block << 20 ..= (block << 20) + 0xFFFFF`.
    pub block: i64,
    /// The bit in the shard's bitmap.
    pub offset: i64,
}

impl FactBit {
    /// The bit of entity `id`, which [`entity_id`] accepted.
    #[must_use]
    pub fn of(id: i64) -> Self {
        Self {
            block: id >> FACT_BLOCK_BITS,
            offset: id & ((1 << FACT_BLOCK_BITS) - 1),
        }
    }
}

/// Checks an entity id is one a real entity can have: `1..=MAX_ENTITY_ID`.
pub fn entity_id(entity: &str, id: i64) -> Result<i64, Poison> {
    if id <= 0 {
        return Err(Poison(format!("{entity} id {id} is not positive")));
    }
    if id > MAX_ENTITY_ID {
        return Err(Poison(format!(
            "{entity} id {id} is beyond the largest accepted id {MAX_ENTITY_ID}"
        )));
    }
    Ok(id)
}

/// A booking's total price in whole cents, exactly; poison when it is negative, beyond what the
/// bookings table can hold, or overflows (rust_decimal's `*` panics on overflow: never used here).
pub fn price_cents(total: Decimal) -> Result<i64, Poison> {
    if total.is_sign_negative() && !total.is_zero() {
        return Err(Poison(format!("total_price {total} is negative")));
    }
    if total > MAX_TOTAL_PRICE {
        return Err(Poison(format!(
            "total_price {total} is beyond the largest price {MAX_TOTAL_PRICE}"
        )));
    }
    total
        .round_dp(2)
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|cents| cents.trunc().to_i64())
        .ok_or_else(|| Poison(format!("total_price {total} cannot be counted in cents")))
}

/// The plan of a booking event. `notifications: false` leaves out the confirmation notices (a
/// rebuild recounts statistics; it does not send notifications again).
pub fn booking_plan(event: &BookingEvent, notifications: bool) -> Result<Plan, Poison> {
    let created = match event.event_type.as_str() {
        BOOKING_CREATED => true,
        BOOKING_CANCELLED => false,
        other => return Err(Poison(format!("unknown booking event type {other:?}"))),
    };
    let booking = event
        .booking
        .as_ref()
        .ok_or_else(|| Poison("booking event without booking".into()))?;
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(flightmesh_proto::time::datetime);
    let mut plan = snapshot_plan(booking, created, notifications, occurred_at)?;
    plan.occurred_at = occurred_at;
    Ok(plan)
}

/// The plan of a booking as a fact: created (`created = true`) or cancelled.
pub fn snapshot_plan(
    booking: &BookingSnapshot,
    created: bool,
    notifications: bool,
    occurred_at: Option<DateTime<Utc>>,
) -> Result<Plan, Poison> {
    let booking_id = entity_id("booking", booking.booking_id)?;
    if booking.destination_name.is_empty() {
        return Err(Poison("booking without destination name".into()));
    }
    let total = decimal_field(booking.total_price.as_ref())
        .map_err(|err| Poison(format!("total_price: {err}")))?;
    let cents = price_cents(total)?;
    let total = Decimal::new(cents, 2);
    let sign = if created { "" } else { "-" };
    let negate = |text: &str| format!("{sign}{text}");
    let infant = booking.passenger_age < CANDY_AGE;

    let mut ops = vec![
        (
            Op::IncrByFloat,
            keys::TOTAL_REVENUE.to_owned(),
            negate(&format!("{total:.2}")),
        ),
        (
            Op::IncrBy,
            keys::TOTAL_REVENUE_CENTS.to_owned(),
            (if created { cents } else { -cents }).to_string(),
        ),
        (
            Op::IncrByFloat,
            destination_suffix(&booking.destination_name),
            negate("1"),
        ),
        (
            Op::SAdd,
            keys::DESTINATION_NAMES.to_owned(),
            booking.destination_name.clone(),
        ),
    ];
    if booking.has_pet {
        ops.push((
            Op::IncrByFloat,
            keys::TOTAL_PET_BOOKINGS.to_owned(),
            negate("1"),
        ));
    }
    if infant {
        push_candy_ops(&mut ops, booking_id, booking, created, &negate);
    }
    if notifications {
        push_notification_ops(&mut ops, booking, created, total, occurred_at);
    }
    Ok(Plan {
        event_type: if created {
            BOOKING_CREATED
        } else {
            BOOKING_CANCELLED
        },
        entity_id: booking_id,
        ops,
        occurred_at,
    })
}

/// Appends an infant's candy operations: the infant and candy-cost counters, then the candy log.
fn push_candy_ops(
    ops: &mut Vec<(Op, String, String)>,
    booking_id: i64,
    booking: &BookingSnapshot,
    created: bool,
    negate: &impl Fn(&str) -> String,
) {
    ops.push((
        Op::IncrByFloat,
        keys::TOTAL_INFANT_COUNT.to_owned(),
        negate("1"),
    ));
    ops.push((
        Op::IncrByFloat,
        keys::TOTAL_CANDY_COST.to_owned(),
        negate(CANDY_COST),
    ));
    let line = if created {
        format!(
            "Reserva {booking_id}: Dulce entregado a {}",
            booking.passenger_name
        )
    } else {
        format!(
            "Reserva {booking_id}: Dulce cancelado para {}",
            booking.passenger_name
        )
    };
    // Counted before the push: a missing counter starts from the list as it was.
    ops.push((
        Op::CountEntry,
        keys::CANDY_LOG_COUNT.to_owned(),
        keys::CANDY_LOG.to_owned(),
    ));
    ops.push((Op::LPush, keys::CANDY_LOG.to_owned(), line));
}

/// Appends the booking's confirmation (or cancellation) notice and counts it as sent.
fn push_notification_ops(
    ops: &mut Vec<(Op, String, String)>,
    booking: &BookingSnapshot,
    created: bool,
    total: Decimal,
    occurred_at: Option<DateTime<Utc>>,
) {
    let timestamp = occurred_at
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let notice = serde_json::json!({
        "type": if created { "booking_confirmation" } else { "booking_cancellation" },
        "passenger": booking.passenger_name,
        "flight": booking.flight_number,
        "total": total.to_string().parse::<f64>().unwrap_or_default(),
        "timestamp": timestamp,
    });
    ops.push((
        Op::LPush,
        keys::NOTIFICATIONS.to_owned(),
        notice.to_string(),
    ));
    ops.push((
        Op::IncrByFloat,
        keys::NOTIFICATIONS_SENT.to_owned(),
        "1".to_owned(),
    ));
}

/// The plan of a destination event: a promotion alert when the destination is on promotion.
pub fn destination_plan(event: &DestinationEvent) -> Result<Plan, Poison> {
    if event.event_type != DESTINATION_CREATED {
        return Err(Poison(format!(
            "unknown catalog event type {:?}",
            event.event_type
        )));
    }
    let destination_id = entity_id("destination", event.destination_id)?;
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(flightmesh_proto::time::datetime);
    let mut ops = Vec::new();
    if event.is_promotion {
        let alert = serde_json::json!({
            "type": "promotion_alert",
            "destination": event.destination_name,
            "discount": "10%",
            "timestamp": occurred_at.unwrap_or_else(Utc::now).to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        ops.push((Op::LPush, keys::NOTIFICATIONS.to_owned(), alert.to_string()));
        ops.push((
            Op::IncrByFloat,
            keys::PROMOTION_ALERTS_SENT.to_owned(),
            "1".to_owned(),
        ));
    }
    Ok(Plan {
        event_type: DESTINATION_CREATED,
        entity_id: destination_id,
        ops,
        occurred_at,
    })
}

/// The apply-once script (see the module docs).
/// KEYS: rebuild flag, the fact's shard bitmap, the legacy (unsharded) bitmap, the set of shard
/// blocks, then one key per operation.
/// ARGV: prefix, bit offset in the shard, bit offset in the legacy bitmap (-1: beyond it), shard
/// block, log cap, then (command, argument) per operation.
const APPLY_LUA: &str = include_str!("apply.lua");

/// The compiled script (its SHA is computed once; Redis caches the body).
fn script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(APPLY_LUA))
}

/// Applies `plan` in `keys`' keyspace (and in the rebuild's, if one runs), keeping at most
/// `log_cap` entries in each log list it pushes to. `Ok(false)`: the fact was applied before,
/// nothing changed.
pub async fn apply<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    plan: &Plan,
    log_cap: u32,
) -> Result<bool, redis::RedisError> {
    let bit = FactBit::of(plan.entity_id);
    let legacy_offset = if plan.entity_id < LEGACY_OFFSET_LIMIT {
        plan.entity_id
    } else {
        -1
    };
    let script = script();
    let mut invocation = script.key(keys.key(keys::REBUILD_ACTIVE));
    invocation
        .key(keys.key(&keys::applied_shard_suffix(plan.event_type, bit.block)))
        .key(keys.key(&applied_suffix(plan.event_type)))
        .key(keys.key(&applied_blocks_suffix(plan.event_type)));
    invocation
        .arg(keys.prefix())
        .arg(bit.offset)
        .arg(legacy_offset)
        .arg(bit.block)
        .arg(log_cap.max(1));
    for (op, key, argument) in &plan.ops {
        invocation.key(keys.key(key));
        invocation.arg(op.command()).arg(argument);
    }
    let applied: i64 = invocation.invoke_async(conn).await?;
    Ok(applied == 1)
}

#[cfg(test)]
mod tests;
