//! The Redis keys of the statistics — the old system's names (CONTRACT.md), behind an optional
//! prefix — and the keys flightmesh adds: exact revenue in cents, the set of destination names,
//! the count of candy log lines, the applied-fact bitmaps (sharded by id range) and the rebuild
//! flag.

/// `stats:total_revenue` (INCRBYFLOAT, the contract's).
pub const TOTAL_REVENUE: &str = "stats:total_revenue";
/// Revenue in integer cents (INCRBY): the exact figure the API answers with.
pub const TOTAL_REVENUE_CENTS: &str = "stats:total_revenue_cents";
/// `stats:total_pet_bookings`.
pub const TOTAL_PET_BOOKINGS: &str = "stats:total_pet_bookings";
/// `stats:total_infant_count`.
pub const TOTAL_INFANT_COUNT: &str = "stats:total_infant_count";
/// `stats:total_candy_cost`.
pub const TOTAL_CANDY_COST: &str = "stats:total_candy_cost";
/// `logs:candy_distribution` (capped at `LOG_LIST_CAP` entries, newest kept).
pub const CANDY_LOG: &str = "logs:candy_distribution";
/// Lines ever pushed to the candy log (the API's `total_count`; the list itself is capped).
pub const CANDY_LOG_COUNT: &str = "stats:candy_log_count";
/// `logs:notifications`.
pub const NOTIFICATIONS: &str = "logs:notifications";
/// `stats:notifications_sent`.
pub const NOTIFICATIONS_SENT: &str = "stats:notifications_sent";
/// `stats:promotion_alerts_sent`.
pub const PROMOTION_ALERTS_SENT: &str = "stats:promotion_alerts_sent";
/// `logs:dead_letter`.
pub const DEAD_LETTERS: &str = "logs:dead_letter";
/// `stats:dead_letter_count`.
pub const DEAD_LETTER_COUNT: &str = "stats:dead_letter_count";
/// The names behind `stats:destination:{name}` keys (a set), so they are listed without SCAN.
pub const DESTINATION_NAMES: &str = "stats:destination_names";
/// Set while a rebuild runs; holds the infix of the fresh keyspace (`rebuild:`).
pub const REBUILD_ACTIVE: &str = "stats:rebuild:active";
/// Held by the one rebuild that may run.
pub const REBUILD_LOCK: &str = "stats:rebuild:lock";
/// Infix of the keyspace a rebuild writes before swapping it in.
pub const REBUILD_INFIX: &str = "rebuild:";

/// The statistics a rebuild recomputes and swaps in (destination keys are added by name).
/// Notifications and dead letters are logs of what happened, not derived from bookings: a
/// rebuild leaves them alone.
/// The applied-fact shards are added from their block sets (see [`REBUILT_FACTS`]); the
/// unsharded bitmaps of earlier versions are listed so that a rebuild retires them.
pub const REBUILT: &[&str] = &[
    TOTAL_REVENUE,
    TOTAL_REVENUE_CENTS,
    TOTAL_PET_BOOKINGS,
    TOTAL_INFANT_COUNT,
    TOTAL_CANDY_COST,
    CANDY_LOG,
    CANDY_LOG_COUNT,
    DESTINATION_NAMES,
    "stats:applied:booking.created",
    "stats:applied:booking.cancelled",
    "stats:applied_blocks:booking.created",
    "stats:applied_blocks:booking.cancelled",
];

/// The event types whose applied-fact shards a rebuild recomputes.
pub const REBUILT_FACTS: &[&str] = &["booking.created", "booking.cancelled"];

/// Full key names under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` ("" for the contract's plain names).
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}{suffix}`.
    #[must_use]
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// `stats:destination:{name}`.
    #[must_use]
    pub fn destination(&self, name: &str) -> String {
        self.key(&destination_suffix(name))
    }

    /// The keyspace a rebuild writes: the same names behind `rebuild:`.
    #[must_use]
    pub fn fresh(&self) -> Self {
        Self::new(&format!("{}{REBUILD_INFIX}", self.prefix))
    }
}

/// `stats:destination:{name}` without prefix.
#[must_use]
pub fn destination_suffix(name: &str) -> String {
    format!("stats:destination:{name}")
}

/// The unsharded bitmap of applied facts of earlier versions (bit = entity id): still read,
/// never written; a rebuild deletes it.
#[must_use]
pub fn applied_suffix(event_type: &str) -> String {
    format!("stats:applied:{event_type}")
}

/// The bitmap of applied facts of a type for ids `block << 20 ..` (bit = id & 0xFFFFF).
#[must_use]
pub fn applied_shard_suffix(event_type: &str, block: i64) -> String {
    format!("stats:applied:{event_type}:{block}")
}

/// The set of shard blocks that exist for an event type (so they are listed without SCAN).
#[must_use]
pub fn applied_blocks_suffix(event_type: &str) -> String {
    format!("stats:applied_blocks:{event_type}")
}
