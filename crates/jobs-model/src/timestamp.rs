//! Instants with millisecond precision, stored as milliseconds since the Unix epoch and shown as RFC 3339.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, format = DateTime, example = "2026-11-24T10:00:00Z")
)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        // The system clock before 1970 is not a case worth a branch: it reads as the epoch.
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, crate::millis_i64);
        Self(millis)
    }

    /// Whole seconds since the Unix epoch, rounded down (the unit of signature timestamps).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn add_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }

    /// Parses RFC 3339 (`2026-11-24T10:00:00Z`, `2026-11-24T11:00:00.250+01:00`).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(Self((at.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.to_offset_date_time();
        match at.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millis() {
        let at = Timestamp::parse_rfc3339("2026-11-24T10:00:00.250+01:00").unwrap();
        assert_eq!(at.to_string(), "2026-11-24T09:00:00.25Z");
        assert_eq!(Timestamp::parse_rfc3339(&at.to_string()), Some(at));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn unix_seconds_round_down() {
        assert_eq!(Timestamp::from_millis(1_700_000_000_999).unix_seconds(), 1_700_000_000);
        assert_eq!(Timestamp::from_millis(0).unix_seconds(), 0);
        assert_eq!(Timestamp::from_millis(-1).unix_seconds(), -1);
    }
}
