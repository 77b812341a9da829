//! Settling as a table: an attempt's outcome, the retries behind it and the task, and what follows.

use std::time::Duration;

use jobs_model::{AttemptStatus, BackoffKind, ExecutionStatus, RetryBackoff, Task, TaskId, TaskSpec, Timestamp};

use crate::settle::{Verdict, backoff_delay, verdict};

fn task(max_retry: u32, backoff: Option<RetryBackoff>) -> Task {
    let mut spec = TaskSpec::named("t".to_owned());
    spec.max_retry = max_retry;
    spec.retry_backoff = backoff;
    Task {
        id: TaskId::new(),
        spec,
        next_fire_at: None,
        created_at: Timestamp::from_millis(0),
        updated_at: Timestamp::from_millis(0),
    }
}

#[track_caller]
fn check(retries: u32, outcome: AttemptStatus, task: Option<&Task>, expected: Verdict) {
    assert_eq!(verdict(retries, outcome, task), expected, "retries {retries}, {outcome}");
}

#[test]
fn verdicts() {
    let fixed = RetryBackoff { kind: BackoffKind::Fixed, delay_seconds: 2, max_delay_seconds: None };
    let none = task(0, None);
    let two = task(2, Some(fixed));
    check(0, AttemptStatus::Failed, Some(&none), Verdict::End(ExecutionStatus::Failed));
    check(0, AttemptStatus::Timeout, Some(&none), Verdict::End(ExecutionStatus::Timeout));
    check(0, AttemptStatus::Failed, Some(&two), Verdict::Retry(Duration::from_secs(2)));
    check(1, AttemptStatus::Timeout, Some(&two), Verdict::Retry(Duration::from_secs(2)));
    check(2, AttemptStatus::Timeout, Some(&two), Verdict::End(ExecutionStatus::Timeout));
    // A deleted task retries nothing, and a timed-out orphan is recorded as a timeout.
    check(0, AttemptStatus::Failed, None, Verdict::End(ExecutionStatus::Failed));
    check(0, AttemptStatus::Timeout, None, Verdict::End(ExecutionStatus::Timeout));
    // The default backoff: exponential from a second.
    check(1, AttemptStatus::Failed, Some(&task(3, None)), Verdict::Retry(Duration::from_secs(2)));
}

#[test]
fn backoffs() {
    let exponential = RetryBackoff { kind: BackoffKind::Exponential, delay_seconds: 3, max_delay_seconds: Some(20) };
    let delays: Vec<u64> = (0..5).map(|retries| backoff_delay(exponential, retries).as_secs()).collect();
    assert_eq!(delays, [3, 6, 12, 20, 20]);
    let huge = RetryBackoff { kind: BackoffKind::Exponential, delay_seconds: u32::MAX, max_delay_seconds: None };
    assert!(backoff_delay(huge, 40).as_secs() > 0);
}
