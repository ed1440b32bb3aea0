//! `google.protobuf.Timestamp` ⇄ `chrono::DateTime<Utc>`.

use chrono::{DateTime, Utc};

/// A UTC instant as a proto timestamp.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always < 1e9 for a valid DateTime, so it fits.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A proto timestamp as a UTC instant, if it is in chrono's range.
#[must_use]
pub fn datetime(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_nanoseconds() {
        let at = DateTime::from_timestamp(1_764_360_000, 123_456_000).unwrap();
        assert_eq!(datetime(&timestamp(at)), Some(at));
    }
}
