//! Unit tests of the health thresholds.

use jobs_model::{Executor, ExecutorId, ExecutorStatus, Health, Timestamp};

use crate::HealthCheckConfig;
use crate::health::{Probe, next_state};

fn executor(health: Health, failures: u32, successes: u32) -> Executor {
    Executor {
        id: ExecutorId::new(),
        name: "g".to_owned(),
        instance_id: "i".to_owned(),
        base_url: "http://127.0.0.1:1".to_owned(),
        health_check_url: "http://127.0.0.1:1/health".to_owned(),
        weight: 1,
        tags: Vec::new(),
        metadata: Default::default(),
        status: ExecutorStatus::Active,
        status_reason: None,
        status_changed_by: None,
        status_changed_at: None,
        health,
        consecutive_failures: failures,
        consecutive_successes: successes,
        last_heartbeat_at: None,
        registered_at: Timestamp::from_millis(0),
        tasks: Vec::new(),
        early_delivery_ms: 0,
        max_concurrency: None,
    }
}

#[track_caller]
fn check(start: (Health, u32, u32), probe: Probe, expected: (Health, u32, u32)) {
    let config = HealthCheckConfig { failure_threshold: 3, recovery_threshold: 2, ..HealthCheckConfig::default() };
    assert_eq!(next_state(&executor(start.0, start.1, start.2), &probe, &config), expected);
}

#[test]
fn thresholds_both_ways() {
    let down = || Probe::Unhealthy("refused".to_owned());
    check((Health::Healthy, 0, 0), Probe::Healthy, (Health::Healthy, 0, 0));
    check((Health::Healthy, 0, 0), down(), (Health::Healthy, 1, 0));
    check((Health::Healthy, 1, 0), down(), (Health::Healthy, 2, 0));
    check((Health::Healthy, 2, 0), down(), (Health::Unhealthy, 3, 0));
    check((Health::Healthy, 2, 0), Probe::Healthy, (Health::Healthy, 0, 0));
    check((Health::Unhealthy, 3, 0), down(), (Health::Unhealthy, 4, 0));
    check((Health::Unhealthy, 3, 0), Probe::Healthy, (Health::Unhealthy, 0, 1));
    check((Health::Unhealthy, 0, 1), down(), (Health::Unhealthy, 1, 0));
    check((Health::Unhealthy, 0, 1), Probe::Healthy, (Health::Healthy, 0, 0));
}
