//! Tests of the memory of finished attempts: the highest attempt wins, entries expire, the size is bounded.

use std::time::{Duration, Instant};

use jobs_model::ExecutionId;

use crate::recent::{REMEMBER_FOR, RecentAttempts};

use Step::{At, Finish, Knows};

/// One step of a scenario over three executions `a`, `b`, `c` (indexes 0, 1, 2).
enum Step {
    /// The clock reads this many seconds after the start.
    At(u64),
    /// Attempt `.1` of execution `.0` finished.
    Finish(usize, u32),
    /// The highest attempt remembered for `a`, `b` and `c`.
    Knows([Option<u32>; 3]),
}

#[track_caller]
fn check(capacity: usize, steps: &[Step]) {
    let ids = [ExecutionId::new(), ExecutionId::new(), ExecutionId::new()];
    let start = Instant::now();
    let mut now = start;
    let mut recent = RecentAttempts::new(REMEMBER_FOR, capacity);
    for (index, step) in steps.iter().enumerate() {
        match step {
            At(seconds) => now = start + Duration::from_secs(*seconds),
            Finish(execution, attempt) => recent.remember(ids[*execution], *attempt, now),
            Knows(expected) => {
                let known = ids.map(|id| recent.highest(id, now));
                assert_eq!(&known, expected, "step {index}");
            }
        }
    }
}

#[test]
fn an_execution_keeps_its_highest_attempt() {
    check(10, &[Knows([None; 3]), Finish(0, 2), Finish(0, 1), Finish(1, 1), Knows([Some(2), Some(1), None])]);
}

#[test]
fn attempts_are_forgotten_ten_minutes_after_they_finished() {
    check(
        10,
        &[
            Finish(0, 1),
            At(300),
            Finish(1, 1),
            At(599),
            Knows([Some(1), Some(1), None]),
            At(600),
            Knows([None, Some(1), None]),
            At(900),
            Knows([None; 3]),
        ],
    );
}

#[test]
fn a_later_finish_renews_the_memory() {
    check(10, &[Finish(0, 1), At(500), Finish(0, 2), At(700), Knows([Some(2), None, None])]);
}

#[test]
fn past_the_capacity_the_oldest_are_forgotten() {
    check(2, &[Finish(0, 1), Finish(1, 1), Finish(2, 1), Knows([None, Some(1), Some(1)])]);
    // A renewed execution is younger than the one finished after its first record.
    check(2, &[Finish(0, 1), Finish(1, 1), Finish(0, 2), Finish(2, 1), Knows([Some(2), None, Some(1)])]);
}
