//! Tests of the lease with explicit instants.

use std::time::Duration;

use tokio::time::Instant;

use crate::Lease;

const LEASE: Duration = Duration::from_secs(3);

/// Whether `lease` is valid at each offset (in milliseconds) from `start`.
#[track_caller]
fn check(lease: &Lease, start: Instant, expected: &[(i64, bool)]) {
    for &(offset, valid) in expected {
        let at = if offset >= 0 {
            start + Duration::from_millis(offset.unsigned_abs())
        } else {
            start - Duration::from_millis(offset.unsigned_abs())
        };
        assert_eq!(lease.is_valid_at(at), valid, "at {offset} ms");
    }
}

#[test]
fn a_new_lease_is_not_valid() {
    let lease = Lease::default();
    let now = Instant::now();
    check(&lease, now, &[(-1_000, false), (0, false), (1_000, false)]);
    assert!(!lease.is_valid());
}

#[test]
fn a_lease_expires_when_checks_stop() {
    let lease = Lease::default();
    let start = Instant::now() + Duration::from_secs(5);
    lease.renew(start, LEASE);
    check(&lease, start, &[(0, true), (2_999, true), (3_000, false), (60_000, false)]);
    // Checks go on: each renews from the instant it was sent.
    lease.renew(start + Duration::from_secs(1), LEASE);
    check(&lease, start, &[(3_000, true), (3_999, true), (4_000, false)]);
    lease.renew(start + Duration::from_secs(2), LEASE);
    check(&lease, start, &[(4_999, true), (5_000, false)]);
    // Then they stop: nothing renews, and past the last check plus the lease duration it is invalid.
    check(&lease, start, &[(5_001, false), (3_600_000, false)]);
}

#[test]
fn clearing_ends_the_lease_at_once() {
    let lease = Lease::default();
    let start = Instant::now();
    lease.renew(start, LEASE);
    let dispatcher = lease.clone();
    check(&dispatcher, start, &[(1, true)]);
    lease.clear();
    check(&dispatcher, start, &[(0, false), (1, false), (2_000, false)]);
}

#[test]
fn a_held_lease_lasts_until_cleared() {
    let lease = Lease::default();
    lease.hold();
    let now = Instant::now();
    check(&lease, now, &[(0, true), (86_400_000, true)]);
    assert!(lease.is_valid());
    lease.clear();
    check(&lease, now, &[(0, false)]);
    assert!(!lease.is_valid());
}

#[test]
fn a_check_before_the_lease_existed_still_counts() {
    let lease = Lease::default();
    let long_ago = Instant::now() - Duration::from_millis(1_000);
    lease.renew(long_ago, LEASE);
    check(&lease, long_ago, &[(-1, true), (0, true), (2_999, true), (3_000, false)]);
}

#[test]
fn an_absurd_duration_does_not_overflow() {
    let lease = Lease::default();
    let now = Instant::now();
    lease.renew(now, Duration::MAX);
    check(&lease, now, &[(0, true), (i64::MAX / 4, true)]);
}
