//! Applying an event to the statistics, atomically and at most once.
//!
//! An event becomes a [`Plan`]: the fact it records (`booking 42 was created`) and the Redis
//! operations of the contract (INCRBYFLOAT, LPUSH, …). One Lua script runs a plan:
//! 1. if the fact's bit is set in its bitmap (`stats:applied:<event type>`, bit = entity id), the
//!    event was applied before: nothing happens (a redelivery, a duplicate publish);
//! 2. every key is checked to have the type the operation needs — so an error never leaves half
//!    an event applied (Redis does not roll back a failing script);
//! 3. every operation runs, then the bit is set.
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

use crate::keys::{self, Keys, applied_suffix, destination_suffix};

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

/// A Redis operation of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    IncrByFloat,
    IncrBy,
    LPush,
    SAdd,
}

impl Op {
    fn command(self) -> &'static str {
        match self {
            Self::IncrByFloat => "INCRBYFLOAT",
            Self::IncrBy => "INCRBY",
            Self::LPush => "LPUSH",
            Self::SAdd => "SADD",
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
    if booking.booking_id <= 0 {
        return Err(Poison(format!(
            "booking id {} is not positive",
            booking.booking_id
        )));
    }
    if booking.destination_name.is_empty() {
        return Err(Poison("booking without destination name".into()));
    }
    let total = decimal_field(booking.total_price.as_ref())
        .map_err(|err| Poison(format!("total_price: {err}")))?
        .round_dp(2);
    let cents = (total * Decimal::ONE_HUNDRED)
        .trunc()
        .to_string()
        .parse::<i64>()
        .map_err(|_| Poison(format!("total_price {total} out of range")))?;
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
                "Reserva {}: Dulce entregado a {}",
                booking.booking_id, booking.passenger_name
            )
        } else {
            format!(
                "Reserva {}: Dulce cancelado para {}",
                booking.booking_id, booking.passenger_name
            )
        };
        ops.push((Op::LPush, keys::CANDY_LOG.to_owned(), line));
    }
    if notifications {
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
    Ok(Plan {
        event_type: if created {
            BOOKING_CREATED
        } else {
            BOOKING_CANCELLED
        },
        entity_id: booking.booking_id,
        ops,
        occurred_at,
    })
}

/// The plan of a destination event: a promotion alert when the destination is on promotion.
pub fn destination_plan(event: &DestinationEvent) -> Result<Plan, Poison> {
    if event.event_type != DESTINATION_CREATED {
        return Err(Poison(format!(
            "unknown catalog event type {:?}",
            event.event_type
        )));
    }
    if event.destination_id <= 0 {
        return Err(Poison(format!(
            "destination id {} is not positive",
            event.destination_id
        )));
    }
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
        entity_id: event.destination_id,
        ops,
        occurred_at,
    })
}

/// The apply-once script (see the module docs).
/// KEYS: rebuild flag, applied bitmap, one key per operation.
/// ARGV: prefix, bit offset, then (command, argument) per operation.
const APPLY_LUA: &str = r"
local prefix = ARGV[1]
local offset = tonumber(ARGV[2])
local nops = #KEYS - 2
local expected = { INCRBYFLOAT = 'string', INCRBY = 'string', LPUSH = 'list', SADD = 'set' }

local function keyname(key, infix)
  if infix == '' then return key end
  return prefix .. infix .. string.sub(key, #prefix + 1)
end

local function usable(key, command)
  local kind = redis.call('TYPE', key).ok
  if kind == 'none' then return true end
  if kind ~= expected[command] then return false end
  if kind == 'string' and tonumber(redis.call('GET', key)) == nil then return false end
  return true
end

local function apply(infix)
  local bitmap = keyname(KEYS[2], infix)
  local kind = redis.call('TYPE', bitmap).ok
  if kind ~= 'none' and kind ~= 'string' then
    return redis.error_reply('WRONGTYPE ' .. bitmap .. ' is a ' .. kind)
  end
  if redis.call('GETBIT', bitmap, offset) == 1 then return 0 end
  for i = 1, nops do
    local key = keyname(KEYS[i + 2], infix)
    local command = ARGV[1 + 2 * i]
    if not usable(key, command) then
      return redis.error_reply('WRONGTYPE ' .. key .. ' cannot take ' .. command)
    end
  end
  for i = 1, nops do
    redis.call(ARGV[1 + 2 * i], keyname(KEYS[i + 2], infix), ARGV[2 + 2 * i])
  end
  redis.call('SETBIT', bitmap, offset, 1)
  return 1
end

local applied = apply('')
if type(applied) == 'table' then return applied end
local infix = redis.call('GET', KEYS[1])
if infix then apply(infix) end
return applied
";

/// The compiled script (its SHA is computed once; Redis caches the body).
fn script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(APPLY_LUA))
}

/// Applies `plan` in `keys`' keyspace (and in the rebuild's, if one runs). `Ok(false)`: the
/// fact was applied before, nothing changed.
pub async fn apply<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    plan: &Plan,
) -> Result<bool, redis::RedisError> {
    let script = script();
    let mut invocation = script.key(keys.key(keys::REBUILD_ACTIVE));
    invocation.key(keys.key(&applied_suffix(plan.event_type)));
    invocation.arg(keys.prefix()).arg(plan.entity_id);
    for (op, key, argument) in &plan.ops {
        invocation.key(keys.key(key));
        invocation.arg(op.command()).arg(argument);
    }
    let applied: i64 = invocation.invoke_async(conn).await?;
    Ok(applied == 1)
}

#[cfg(test)]
mod tests {
    use flightmesh_proto::types::Decimal as PbDecimal;

    use super::*;

    fn snapshot(age: i32, pet: bool) -> BookingSnapshot {
        BookingSnapshot {
            booking_id: 7,
            passenger_name: "Ana".into(),
            passenger_age: age,
            has_pet: pet,
            total_price: Some(PbDecimal {
                value: "950.00".into(),
            }),
            flight_number: "CT-1".into(),
            destination_name: "Cartagena".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_infant_with_a_pet_touches_every_statistic() {
        let plan = snapshot_plan(&snapshot(8, true), true, true, None).unwrap();
        let keys: Vec<_> = plan.ops.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "stats:total_revenue",
                "stats:total_revenue_cents",
                "stats:destination:Cartagena",
                "stats:destination_names",
                "stats:total_pet_bookings",
                "stats:total_infant_count",
                "stats:total_candy_cost",
                "logs:candy_distribution",
                "logs:notifications",
                "stats:notifications_sent",
            ]
        );
        assert_eq!(plan.ops[0].2, "950.00");
        assert_eq!(plan.ops[1].2, "95000");
        assert_eq!(plan.ops[7].2, "Reserva 7: Dulce entregado a Ana");
    }

    #[test]
    fn a_cancellation_applies_the_opposite_amounts() {
        let plan = snapshot_plan(&snapshot(8, false), false, false, None).unwrap();
        let ops: Vec<_> = plan
            .ops
            .iter()
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                ("stats:total_revenue", "-950.00"),
                ("stats:total_revenue_cents", "-95000"),
                ("stats:destination:Cartagena", "-1"),
                ("stats:destination_names", "Cartagena"),
                ("stats:total_infant_count", "-1"),
                ("stats:total_candy_cost", "-5.0"),
                (
                    "logs:candy_distribution",
                    "Reserva 7: Dulce cancelado para Ana"
                ),
            ]
        );
        assert_eq!(plan.event_type, BOOKING_CANCELLED);
    }

    #[test]
    fn adults_get_no_candy_and_bad_events_are_poison() {
        let plan = snapshot_plan(&snapshot(12, false), true, false, None).unwrap();
        assert!(
            plan.ops
                .iter()
                .all(|(_, k, _)| !k.contains("candy") && !k.contains("infant"))
        );
        let mut bad = snapshot(30, false);
        bad.total_price = None;
        assert!(snapshot_plan(&bad, true, false, None).is_err());
        let event = BookingEvent {
            event_type: "booking.exploded".into(),
            ..Default::default()
        };
        assert!(booking_plan(&event, true).is_err());
    }
}
