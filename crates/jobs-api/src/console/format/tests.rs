//! Durations and instants as the console writes them.

use jobs_model::Timestamp;

use crate::console::format::{duration, time};

#[track_caller]
fn check(millis: i64, expected: &str) {
    assert_eq!(duration(millis), expected);
}

#[test]
fn durations_read_in_the_largest_fitting_units() {
    check(-5, "0 ms");
    check(0, "0 ms");
    check(850, "850 ms");
    check(1_000, "1.0 s");
    check(12_345, "12.3 s");
    check(59_999, "59.9 s");
    check(60_000, "1 min 0 s");
    check(243_000, "4 min 3 s");
    check(3_600_000, "1 h 0 min");
    check(7_500_000, "2 h 5 min");
    check(86_400_000 * 3 + 3_600_000 * 4, "3 d 4 h");
}

#[test]
fn instants_are_utc_text_with_a_machine_readable_value() {
    let at = Timestamp::parse_rfc3339("2026-11-28T15:22:14.250Z").unwrap();
    assert_eq!(time(at).into_string(), r#"<time datetime="2026-11-28T15:22:14.25Z">2026-11-28 15:22:14 UTC</time>"#);
}
