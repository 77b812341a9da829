//! Queue order as a table: which pending executions go out, and in which order.

use std::collections::HashMap;

use jobs_model::{Execution, ExecutionId, ExecutionMode, ExecutionStatus, TaskId, Timestamp, TriggerType};

use crate::queue::select;

/// A pending execution of task `task` (a small number), created `n`-th, due at `scheduled` (or `retry_at`).
fn pending(task: u8, scheduled: i64, retry_at: Option<i64>) -> Execution {
    Execution {
        id: ExecutionId::new(),
        task_id: task_id(task),
        task_name: format!("t{task}"),
        trigger_type: TriggerType::Cron,
        status: ExecutionStatus::Pending,
        scheduled_at: Timestamp::from_millis(scheduled),
        parameters: Default::default(),
        executor_id: None,
        attempt: 0,
        retries: u32::from(retry_at.is_some()),
        retry_at: retry_at.map(Timestamp::from_millis),
        deadline_at: None,
        created_at: Timestamp::from_millis(scheduled),
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

fn task_id(task: u8) -> TaskId {
    TaskId::parse(&format!("0193a000-0000-7000-8000-0000000000{task:02}")).expect("a valid id")
}

/// `rows` in creation order as (task, scheduled, retry_at); `expected` the positions handed out, in order.
#[track_caller]
fn check(modes: &[(u8, ExecutionMode)], rows: &[(u8, i64, Option<i64>)], expected: &[usize]) {
    let modes: HashMap<TaskId, ExecutionMode> = modes.iter().map(|(task, mode)| (task_id(*task), *mode)).collect();
    let executions: Vec<Execution> = rows.iter().map(|(task, at, retry)| pending(*task, *at, *retry)).collect();
    let ids: Vec<ExecutionId> = executions.iter().map(|execution| execution.id).collect();
    // The database hands rows in any order: reverse them to show the order is the queue's own.
    let got: Vec<usize> = select(executions.into_iter().rev().collect(), &modes)
        .iter()
        .filter_map(|execution| ids.iter().position(|id| *id == execution.id))
        .collect();
    assert_eq!(got, expected, "rows {rows:?}");
}

#[test]
fn order() {
    use ExecutionMode::*;
    // A sequential task offers only its head, however many wait behind it.
    check(&[(1, Sequential)], &[(1, 1_000, None), (1, 2_000, None), (1, 3_000, None)], &[0]);
    // Other modes offer every due execution, in the order they fell due.
    check(&[(1, Parallel)], &[(1, 3_000, None), (1, 1_000, None)], &[1, 0]);
    // A retry is ordered by its retry time, a trigger of another task by its own instant.
    check(
        &[(1, Sequential), (2, Skip), (3, Parallel)],
        &[(1, 1_000, None), (1, 1_100, None), (2, 500, Some(2_500)), (3, 2_000, None)],
        &[0, 3, 2],
    );
    // Twelve sequential queues of a hundred each cannot hide a trigger made later.
    let mut modes: Vec<(u8, ExecutionMode)> = (1..=12).map(|task| (task, Sequential)).collect();
    modes.push((13, Parallel));
    let mut rows: Vec<(u8, i64, Option<i64>)> = Vec::new();
    for slot in 0..100 {
        for task in 1..=12 {
            rows.push((task, 1_000 + slot * 1_000, None));
        }
    }
    rows.push((13, 200_000, None));
    let mut expected: Vec<usize> = (0..12).collect();
    expected.push(rows.len() - 1);
    check(&modes, &rows, &expected);
    // An unknown task (deleted) is kept, to be ended.
    check(&[], &[(9, 1_000, None)], &[0]);
}
