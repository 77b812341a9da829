//! Signing and verifying: a known vector (from `openssl dgst -sha256 -hmac`), and every way a signature is refused.

use crate::signature::{SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, constant_time_eq, sign, verify};

const SECRET: &[u8] = b"s3cret";
const AT: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"execution_id":"x"}"#;
/// `printf '%s.%s' 1700000000 '{"execution_id":"x"}' | openssl dgst -sha256 -hmac s3cret`
const BODY_SIGNATURE: &str = "sha256=8bbc60acb87d82cfc264682e044bfdfdea43d7258f62553c4f5cc8863247c4d3";
/// `printf '%s.%s' 1700000000 '' | openssl dgst -sha256 -hmac s3cret`
const EMPTY_SIGNATURE: &str = "sha256=21948100f1d7a89f3338f6b1106fc4f7a702fbe1493b833a3382f80193bde3fe";

#[track_caller]
fn check(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    expected: Result<(), SignatureError>,
) {
    assert_eq!(verify(SECRET, timestamp, signature, body, now), expected);
}

#[test]
fn signs_like_openssl() {
    assert_eq!(sign(SECRET, AT, BODY), BODY_SIGNATURE);
    assert_eq!(sign(SECRET, AT, b""), EMPTY_SIGNATURE);
    // Keys longer than SHA-256's block are hashed first, as HMAC says.
    let long = [b'k'; 100];
    assert_ne!(sign(&long, AT, BODY), sign(&long[..64], AT, BODY));
}

#[test]
fn accepts_the_right_signature() {
    let at = AT.to_string();
    check(Some(&at), Some(BODY_SIGNATURE), BODY, AT, Ok(()));
    check(Some(&at), Some(EMPTY_SIGNATURE), b"", AT, Ok(()));
    check(Some(&at), Some(&BODY_SIGNATURE.to_uppercase().replace("SHA256=", "sha256=")), BODY, AT, Ok(()));
    // Up to five minutes either way.
    check(Some(&at), Some(BODY_SIGNATURE), BODY, AT + 300, Ok(()));
    check(Some(&at), Some(BODY_SIGNATURE), BODY, AT - 300, Ok(()));
}

#[test]
fn refuses_a_wrong_secret_or_a_tampered_body() {
    let at = AT.to_string();
    let other = sign(b"other secret", AT, BODY);
    check(Some(&at), Some(&other), BODY, AT, Err(SignatureError::Mismatch));
    check(Some(&at), Some(BODY_SIGNATURE), br#"{"execution_id":"y"}"#, AT, Err(SignatureError::Mismatch));
    check(Some(&at), Some(BODY_SIGNATURE), b"", AT, Err(SignatureError::Mismatch));
    // The timestamp is signed too.
    check(Some(&(AT + 1).to_string()), Some(BODY_SIGNATURE), BODY, AT, Err(SignatureError::Mismatch));
}

#[test]
fn refuses_stale_signatures_both_ways() {
    let at = AT.to_string();
    check(Some(&at), Some(BODY_SIGNATURE), BODY, AT + 301, Err(SignatureError::Stale { skew_seconds: 301 }));
    check(Some(&at), Some(BODY_SIGNATURE), BODY, AT - 301, Err(SignatureError::Stale { skew_seconds: -301 }));
    check(
        Some("-9223372036854775808"),
        Some(BODY_SIGNATURE),
        BODY,
        AT,
        Err(SignatureError::Stale { skew_seconds: i64::MAX }),
    );
}

#[test]
fn refuses_missing_or_garbled_headers() {
    let at = AT.to_string();
    check(None, Some(BODY_SIGNATURE), BODY, AT, Err(SignatureError::Missing(TIMESTAMP_HEADER)));
    check(Some(&at), None, BODY, AT, Err(SignatureError::Missing(SIGNATURE_HEADER)));
    for timestamp in ["", "soon", "1.5", "2023-11-14T22:13:20Z", "99999999999999999999"] {
        check(Some(timestamp), Some(BODY_SIGNATURE), BODY, AT, Err(SignatureError::InvalidTimestamp));
    }
    let hex = &BODY_SIGNATURE["sha256=".len()..];
    for signature in [hex, "", "sha256=", "sha1=abc", &format!("sha256={}", &hex[..62]), &format!("sha256={hex}00")] {
        check(Some(&at), Some(signature), BODY, AT, Err(SignatureError::Malformed));
    }
    check(Some(&at), Some(&format!("sha256=zz{}", &hex[2..])), BODY, AT, Err(SignatureError::Malformed));
    check(Some(&at), Some(&format!("sha256=+1{}", &hex[2..])), BODY, AT, Err(SignatureError::Malformed));
}

#[test]
fn messages_name_the_header() {
    assert_eq!(SignatureError::Missing(SIGNATURE_HEADER).to_string(), "missing `X-Jobs-Signature` header");
    assert_eq!(
        SignatureError::Stale { skew_seconds: -400 }.to_string(),
        "signature timestamp is -400 s away from this server's clock (at most 300 s allowed)"
    );
}

#[test]
fn compares_secrets() {
    assert!(constant_time_eq(b"token-a", b"token-a"));
    assert!(!constant_time_eq(b"token-a", b"token-b"));
    assert!(!constant_time_eq(b"token-a", b"token-a "));
    assert!(!constant_time_eq(b"", b"token-a"));
}
