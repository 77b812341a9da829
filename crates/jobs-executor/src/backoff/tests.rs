//! Tests of the backoff sequence.

use std::time::Duration;

use crate::backoff::Backoff;

#[track_caller]
fn check(initial_ms: u64, max_ms: u64, expected_ms: &[u64]) {
    let mut backoff = Backoff::new(Duration::from_millis(initial_ms), Duration::from_millis(max_ms));
    let delays: Vec<u64> =
        expected_ms.iter().map(|_| u64::try_from(backoff.next_delay().as_millis()).unwrap()).collect();
    assert_eq!(delays, expected_ms);
}

#[test]
fn doubles_up_to_the_cap() {
    check(100, 5_000, &[100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
    check(300, 1_000, &[300, 600, 1_000, 1_000]);
}

#[test]
fn an_initial_delay_over_the_cap_is_capped() {
    check(10_000, 5_000, &[5_000, 5_000]);
}
