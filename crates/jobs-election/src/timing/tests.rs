//! Tests of the timeouts derived from the config.

use std::time::Duration;

use crate::ElectionConfig;
use crate::timing::Timing;

fn config(heartbeat_millis: u64, lock_timeout_millis: u64) -> ElectionConfig {
    ElectionConfig {
        instance_id: "s1".to_owned(),
        lock_key: "jobs_leader_test".to_owned(),
        lock_timeout: jobs_model::Duration::from_millis(lock_timeout_millis),
        heartbeat_interval: jobs_model::Duration::from_millis(heartbeat_millis),
    }
}

/// `expected`: heartbeat, lease, acquire wait, query timeout, session timeout, retry pause, all in milliseconds.
#[track_caller]
fn check(heartbeat_millis: u64, lock_timeout_millis: u64, expected: [u64; 6]) {
    let timing = Timing::new(&config(heartbeat_millis, lock_timeout_millis));
    let [heartbeat, lease, acquire_wait, query_timeout, session_timeout, retry_pause] =
        expected.map(Duration::from_millis);
    let expected = Timing { heartbeat, lease, acquire_wait, query_timeout, session_timeout, retry_pause };
    assert_eq!(timing, expected, "heartbeat {heartbeat_millis} ms, lock_timeout {lock_timeout_millis} ms");
}

#[test]
fn timing_follows_the_heartbeat() {
    // The seed's defaults: heartbeat 10 s, lock_timeout 30 s; the lease is one heartbeat plus 1 s.
    check(10_000, 30_000, [10_000, 11_000, 10_000, 5_000, 20_000, 1_000]);
    // Tests and the failover benchmark: heartbeat 1 s; a frozen leader's session is dropped after 5 s.
    check(1_000, 30_000, [1_000, 2_000, 1_000, 1_000, 5_000, 1_000]);
    // A short lock_timeout shortens the wait for the lock, never below 1 s.
    check(1_000, 500, [1_000, 2_000, 1_000, 1_000, 5_000, 1_000]);
    check(10_000, 3_000, [10_000, 11_000, 3_000, 5_000, 20_000, 1_000]);
    // A fractional heartbeat waits whole seconds for the lock, never less than one.
    check(1_500, 4_000, [1_500, 2_500, 2_000, 1_500, 5_000, 1_000]);
    check(200, 30_000, [200, 1_200, 1_000, 1_000, 5_000, 200]);
    // A zero heartbeat runs at 100 ms rather than spinning.
    check(0, 0, [100, 1_100, 1_000, 1_000, 5_000, 100]);
    // A long heartbeat: the server keeps a silent session for 2 heartbeats.
    check(60_000, 600_000, [60_000, 61_000, 60_000, 5_000, 120_000, 1_000]);
}

#[test]
fn the_session_outlives_the_lease() {
    for heartbeat in [0, 100, 499, 500, 1_000, 3_333, 10_000, 100_000] {
        for lock_timeout in [0, 1_000, 30_000, 1_000_000] {
            let timing = Timing::new(&config(heartbeat, lock_timeout));
            assert!(timing.session_timeout >= timing.lease + Duration::from_secs(2), "{timing:?}");
            assert!(timing.lease <= timing.heartbeat + Duration::from_secs(1), "{timing:?}");
            assert!(timing.lease > timing.heartbeat, "{timing:?}");
            assert!(timing.acquire_wait_secs() >= 1, "{timing:?}");
        }
    }
}
