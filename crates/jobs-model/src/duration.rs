//! Durations written as in the seed's config: `30s`, `5m`, `500ms`, `1h30m`, or a bare number of seconds.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration that (de)serializes in the human form of the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(StdDuration::from_millis(millis))
    }

    pub const fn get(self) -> StdDuration {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// The whole milliseconds in `duration`, saturating at `i64::MAX` instead of wrapping.
///
/// `Duration::as_millis` returns a `u128`; use this rather than an `as i64` cast wherever milliseconds meet a
/// [`Timestamp`](crate::Timestamp) or a database column.
pub fn millis_i64(duration: StdDuration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The whole microseconds in `duration`, saturating at `i64::MAX` instead of wrapping.
pub fn micros_i64(duration: StdDuration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Parses `30s`, `5m`, `1h30m`, `250ms`, `2d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<StdDuration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(StdDuration::from_secs(secs));
    }
    let mut total = StdDuration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration (expected e.g. `30s`, `5m`, `500ms`)"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => StdDuration::from_millis(number),
            "s" => StdDuration::from_secs(number),
            "m" => StdDuration::from_secs(number.saturating_mul(60)),
            "h" => StdDuration::from_secs(number.saturating_mul(3600)),
            "d" => StdDuration::from_secs(number.saturating_mul(86_400)),
            _ => return Err(format!("`{text}` has an unknown unit `{unit}` (use ms, s, m, h or d)")),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration in the shortest form `parse_duration` reads back.
pub fn format_duration(duration: StdDuration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs();
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Secs(secs) => Ok(Self::from_secs(secs)),
            Raw::Text(text) => parse_duration(&text).map(Self).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Result<i64, ()>) {
        let got = parse_duration(input).map(millis_i64).map_err(|_| ());
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn parses_the_seed_forms() {
        check("30s", Ok(30_000));
        check("5m", Ok(300_000));
        check("10", Ok(10_000));
        check("250ms", Ok(250));
        check("1h30m", Ok(5_400_000));
        check("30d", Ok(2_592_000_000));
        check("1d12h", Ok(129_600_000));
        check("", Err(()));
        check("5x", Err(()));
        check("s", Err(()));
        check("-1s", Err(()));
    }

    #[test]
    fn whole_units_saturate_instead_of_wrapping() {
        assert_eq!(millis_i64(StdDuration::from_micros(1_999)), 1);
        assert_eq!(micros_i64(StdDuration::from_nanos(1_999)), 1);
        assert_eq!(millis_i64(StdDuration::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(micros_i64(StdDuration::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(millis_i64(StdDuration::MAX), i64::MAX);
        let largest = StdDuration::from_millis(i64::MAX.unsigned_abs());
        assert_eq!(millis_i64(largest), i64::MAX);
        assert_eq!(millis_i64(largest - StdDuration::from_millis(1)), i64::MAX - 1);
        assert_eq!(millis_i64(StdDuration::ZERO), 0);
    }

    #[test]
    fn formats_back() {
        for text in ["30s", "5m", "2h", "250ms", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
