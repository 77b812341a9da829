//! Admission as a table: mode, the task's open executions, the fire, and the verdict.

use jobs_model::{Execution, ExecutionId, ExecutionMode, ExecutionStatus, TaskId, Timestamp, TriggerType};

use crate::admission::{Admission, SEQUENTIAL_QUEUE_LIMIT, admit};

/// An open execution: `status` with `retries` retries behind it.
fn open(status: ExecutionStatus, retries: u32) -> Execution {
    Execution {
        id: ExecutionId::new(),
        task_id: TaskId::parse("0193a000-0000-7000-8000-000000000001").expect("a valid id"),
        task_name: "t".to_owned(),
        trigger_type: TriggerType::Cron,
        status,
        scheduled_at: Timestamp::from_millis(1_000),
        parameters: Default::default(),
        executor_id: None,
        attempt: retries,
        retries,
        retry_at: None,
        deadline_at: None,
        created_at: Timestamp::from_millis(1_000),
        started_at: None,
        finished_at: None,
        result: None,
        error: None,
        missed_slots: 0,
        upstream_execution_id: None,
        fire_id: None,
        shard: None,
        epoch: None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Send,
    Replace(usize),
    Wait,
    Skip,
}

/// `before` are open before the fire (older ids), then the fire itself (a new pending execution).
#[track_caller]
fn check(mode: ExecutionMode, before: &[(ExecutionStatus, u32)], expected: Verdict) {
    let mut rows: Vec<Execution> = before.iter().map(|(status, retries)| open(*status, *retries)).collect();
    let fire = open(ExecutionStatus::Pending, 0);
    rows.push(fire.clone());
    let verdict = match admit(mode, "t", &fire, &rows) {
        Admission::Send => Verdict::Send,
        Admission::Replace(ids) => Verdict::Replace(ids.len()),
        Admission::Wait => Verdict::Wait,
        Admission::Skip(_) => Verdict::Skip,
    };
    assert_eq!(verdict, expected, "{mode} with {before:?}");
}

#[test]
fn modes() {
    use ExecutionMode::*;
    use ExecutionStatus::{Pending, Running};
    check(Parallel, &[], Verdict::Send);
    check(Parallel, &[(Running, 0), (Pending, 1)], Verdict::Send);

    check(Skip, &[], Verdict::Send);
    check(Skip, &[(Running, 0)], Verdict::Skip);
    // Waiting for its retry is still running.
    check(Skip, &[(Pending, 1)], Verdict::Skip);
    // A plain pending fire (a trigger not yet sent) does not hold the task.
    check(Skip, &[(Pending, 0)], Verdict::Send);

    check(Replace, &[], Verdict::Send);
    check(Replace, &[(Running, 0)], Verdict::Replace(1));
    check(Replace, &[(Pending, 2)], Verdict::Replace(1));
    check(Replace, &[(Running, 0), (Pending, 1), (Pending, 0)], Verdict::Replace(2));

    check(Sequential, &[], Verdict::Send);
    check(Sequential, &[(Running, 0)], Verdict::Wait);
    check(Sequential, &[(Pending, 1)], Verdict::Wait);
    // An older fire still waiting goes first.
    check(Sequential, &[(Pending, 0)], Verdict::Wait);
}

#[test]
fn a_full_sequential_queue_skips_newcomers() {
    let mut before = vec![(ExecutionStatus::Running, 0)];
    before.extend(std::iter::repeat_n((ExecutionStatus::Pending, 0), SEQUENTIAL_QUEUE_LIMIT - 1));
    check(ExecutionMode::Sequential, &before, Verdict::Wait);
    before.push((ExecutionStatus::Pending, 0));
    check(ExecutionMode::Sequential, &before, Verdict::Skip);
}

#[test]
fn the_head_of_a_sequential_queue_starts_once_nothing_runs() {
    // The fire is the oldest pending row: what is after it does not hold it back.
    let fire = open(ExecutionStatus::Pending, 0);
    let later = open(ExecutionStatus::Pending, 0);
    assert_eq!(admit(ExecutionMode::Sequential, "t", &fire, &[fire.clone(), later]), Admission::Send);
}
