//! The times the executions filter reads.

use jobs_model::Timestamp;

use crate::console::task_detail::history::parse_instant;

#[track_caller]
fn check(text: &str, expected: Option<&str>) {
    let expected = expected.map(|rfc3339| Timestamp::parse_rfc3339(rfc3339).expect("a valid expectation"));
    assert_eq!(parse_instant(text), expected, "{text}");
}

#[test]
fn times_read_as_utc_unless_they_say_otherwise() {
    check("2026-03-01T14:00:00Z", Some("2026-03-01T14:00:00Z"));
    check("2026-03-01T15:00:00+01:00", Some("2026-03-01T14:00:00Z"));
    check("2026-03-01 14:00", Some("2026-03-01T14:00:00Z"));
    check("2026-03-01T14:00", Some("2026-03-01T14:00:00Z"));
    check(" 2026-03-01 14:00:30 ", Some("2026-03-01T14:00:30Z"));
    check("2026-03-01", Some("2026-03-01T00:00:00Z"));
    check("yesterday", None);
    check("2026-13-01 14:00", None);
    check("2026-03-01 25:00", None);
    check("", None);
}
