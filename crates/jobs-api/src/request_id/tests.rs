//! Which incoming request ids are kept.

use axum::http::{HeaderMap, HeaderValue};

use crate::request_id::{X_REQUEST_ID, incoming};

#[track_caller]
fn check(header: Option<&[u8]>, expected: Option<&str>) {
    let mut headers = HeaderMap::new();
    if let Some(header) = header {
        headers.insert(X_REQUEST_ID, HeaderValue::from_bytes(header).expect("a header value"));
    }
    assert_eq!(incoming(&headers).as_deref(), expected);
}

#[test]
fn sane_ids_are_kept_and_others_replaced() {
    check(None, None);
    check(Some(b"abc-123"), Some("abc-123"));
    check(Some(b"0190f5c2-7c1e-7000-8000-000000000000"), Some("0190f5c2-7c1e-7000-8000-000000000000"));
    check(Some(b"trace:span/1+x=y@z_w.v"), Some("trace:span/1+x=y@z_w.v"));
    check(Some(&[b'a'; 128]), Some(&"a".repeat(128)));
    check(Some(&[b'a'; 129]), None);
    check(Some(b""), None);
    check(Some(b"has space"), None);
    check(Some(b"quote\"d"), None);
    check(Some(b"line\tbreak"), None);
    check(Some("caf\u{e9}".as_bytes()), None);
}
