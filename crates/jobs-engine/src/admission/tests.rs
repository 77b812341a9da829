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

/// The shards of one broadcast fire: `statuses[i]` is shard i's, all sharing the first shard's id as `fire_id`.
fn shards(statuses: &[ExecutionStatus]) -> Vec<Execution> {
    let mut shards: Vec<Execution> = statuses.iter().map(|status| open(*status, 0)).collect();
    let fire_id = shards[0].id;
    let total = u32::try_from(shards.len()).expect("a few shards");
    for (index, shard) in (0..).zip(shards.iter_mut()) {
        shard.fire_id = Some(fire_id);
        shard.shard = Some(jobs_model::protocol::Shard { index, total });
    }
    shards
}

#[test]
fn the_shards_of_a_fire_never_hold_each_other_back() {
    use ExecutionStatus::{Pending, Running};
    let fire = shards(&[Running, Running, Pending]);
    for mode in [ExecutionMode::Skip, ExecutionMode::Sequential, ExecutionMode::Replace] {
        assert_eq!(admit(mode, "t", &fire[2], &fire), Admission::Send, "{mode}");
    }
}

#[test]
fn a_fire_waits_or_is_skipped_while_any_shard_of_the_previous_one_is_open() {
    use ExecutionStatus::{Pending, Success};
    // Two shards ended, one not yet sent: the previous fire still holds the task.
    let previous = shards(&[Success, Success, Pending]);
    let open_rows: Vec<Execution> = previous.iter().filter(|shard| shard.status == Pending).cloned().collect();
    let next = open(Pending, 0);
    let mut rows = open_rows.clone();
    rows.push(next.clone());
    assert!(matches!(admit(ExecutionMode::Skip, "t", &next, &rows), Admission::Skip(_)));
    assert_eq!(admit(ExecutionMode::Sequential, "t", &next, &rows), Admission::Wait);
    assert_eq!(admit(ExecutionMode::Replace, "t", &next, &rows), Admission::Replace(vec![open_rows[0].id]));
}

#[test]
fn a_later_shard_keeps_its_fires_place_in_a_sequential_line() {
    use ExecutionStatus::{Pending, Running};
    // Fire 1 was written, then fire 2, then fire 1 was split: its shard 1 has a newer id than fire 2.
    let mut fire_one = shards(&[Running]);
    let fire_two = open(Pending, 0);
    let mut late_shard = open(Pending, 0);
    late_shard.fire_id = fire_one[0].fire_id;
    late_shard.shard = Some(jobs_model::protocol::Shard { index: 1, total: 2 });
    fire_one.push(late_shard.clone());
    let rows = [fire_one.clone(), vec![fire_two.clone()]].concat();
    assert_eq!(admit(ExecutionMode::Sequential, "t", &late_shard, &rows), Admission::Send);
    assert_eq!(admit(ExecutionMode::Sequential, "t", &fire_two, &rows), Admission::Wait);
}
