//! Request signatures between scheduler and executors, keyed with the shared `auth.executor_secret`.
//!
//! A signed request carries [`TIMESTAMP_HEADER`] (unix seconds) and [`SIGNATURE_HEADER`]
//! (`sha256=` and the lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with the shared
//! secret). A request without a body signs the empty body. Pure functions: the caller reads the
//! clock and the headers, and passes the current time in.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ErrorKind;

/// The header with the signing time, in unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Jobs-Timestamp";
/// The header with the signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Jobs-Signature";
/// How far a signing time may be from the verifier's clock, either way.
pub const MAX_SKEW_SECONDS: i64 = 300;

const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("missing `{0}` header")]
    Missing(&'static str),
    #[error("`{TIMESTAMP_HEADER}` is not a unix time in seconds")]
    InvalidTimestamp,
    #[error("`{SIGNATURE_HEADER}` is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error(
        "signature timestamp is {skew_seconds} s away from this server's clock (at most {MAX_SKEW_SECONDS} s allowed)"
    )]
    Stale { skew_seconds: i64 },
    #[error("signature does not match the request")]
    Mismatch,
}

impl SignatureError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unauthorized
    }
}

/// The [`SIGNATURE_HEADER`] value for `body` signed at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut header = String::with_capacity(PREFIX.len() + 2 * tag.len());
    header.push_str(PREFIX);
    for byte in tag.iter() {
        header.push(hex_digit(byte >> 4));
        header.push(hex_digit(byte & 0x0f));
    }
    header
}

/// The two header values for `body` signed at `now_unix` seconds: `(timestamp, signature)`.
///
/// The caller reads the clock (`Timestamp::now().unix_seconds()`), so that this crate does no I/O.
pub fn sign_headers(secret: &[u8], now_unix: i64, body: &[u8]) -> (String, String) {
    (now_unix.to_string(), sign(secret, now_unix, body))
}

/// Checks the header values (`None` when a header is absent) against `body`, at `now_unix` seconds.
///
/// The signature is compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp_header.ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
    let signature = signature_header.ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| SignatureError::InvalidTimestamp)?;
    let tag = signature.trim().strip_prefix(PREFIX).and_then(decode_hex).ok_or(SignatureError::Malformed)?;
    let skew_seconds = now_unix.saturating_sub(timestamp);
    if skew_seconds.saturating_abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::Stale { skew_seconds });
    }
    mac(secret, timestamp, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

/// Whether two secrets are equal, in time that depends on neither their contents nor their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed), so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

/// 64 hex digits (either case) as 32 bytes.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests;
