//! Conversions between column values and model values; a stored value that does not parse is `Error::Corrupt`.

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Parses a stored id (`TaskId::parse` and friends).
pub(crate) fn id<T>(column: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| Error::corrupt(column, text))
}

pub(crate) fn opt_id<T>(column: &str, text: Option<&str>, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    text.map(|text| id(column, text, parse)).transpose()
}

/// Parses a stored status word or other `FromStr` value.
pub(crate) fn word<T: FromStr>(column: &str, text: &str) -> Result<T> {
    text.parse().map_err(|_| Error::corrupt(column, text))
}

pub(crate) fn json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("{column}: {err}")))
}

pub(crate) fn opt_json<T: DeserializeOwned>(column: &str, text: Option<&str>) -> Result<Option<T>> {
    text.map(|text| json(column, text)).transpose()
}

/// Serializes a value for a text column.
pub(crate) fn to_json<T: Serialize + ?Sized>(column: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::InvalidArgument(format!("{column}: {err}")))
}

pub(crate) fn opt_to_json<T: Serialize>(column: &str, value: Option<&T>) -> Result<Option<String>> {
    value.map(|value| to_json(column, value)).transpose()
}

/// A `u32` for an INTEGER column; values beyond `i32::MAX` (never valid for these fields) saturate.
pub(crate) fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(crate) fn uint(column: &str, value: i32) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::corrupt(column, value))
}
