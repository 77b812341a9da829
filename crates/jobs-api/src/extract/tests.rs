//! NUL detection in JSON text.

use crate::extract::has_nul_escape;

#[track_caller]
fn check(json: &str, expected: bool) {
    assert_eq!(has_nul_escape(json.as_bytes()), expected, "{json}");
}

#[test]
fn finds_nul_escapes_only() {
    check(r#"{"a": "b"}"#, false);
    check(r#"{"a": "x\u0000y"}"#, true);
    check(r#"{"a\u0000": 1}"#, true);
    check(r#"{"a": "\\u0000"}"#, false);
    check(r#"{"a": "\\\u0000"}"#, true);
    check(r#"{"a": "u0000"}"#, false);
    check(r#"{"a": "\u00001"}"#, true);
    check(r#"{"a": "\u0001"}"#, false);
}
