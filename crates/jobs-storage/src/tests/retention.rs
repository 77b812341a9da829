//! Retention: old final executions go in small batches with their attempts and logs; open ones always stay.

use std::collections::BTreeSet;

use jobs_model::{Execution, ExecutionId, ExecutionStatus, ExecutorId, Timestamp, TriggerType};

use crate::tests::{T0, at, execution, task};
use crate::{ExecutionFilter, Store};

/// Rows per batch: small, so that every test needs several.
const BATCH: u64 = 2;

/// Stores `e`, gives it two attempts and three log lines, and ends it as `status` at `finished` (or leaves it
/// pending or running).
async fn insert(store: &Store, e: &Execution, status: ExecutionStatus, finished: Timestamp) {
    store.insert_execution(e).await.unwrap();
    let lines: Vec<String> = (0..3).map(|n| format!("{} line {n}", e.id)).collect();
    store.append_logs(e.id, &lines, e.created_at).await.unwrap();
    if status == ExecutionStatus::Pending {
        return;
    }
    let executor = ExecutorId::new();
    let start = e.created_at;
    assert!(store.start_attempt(e.id, 1, executor, start, start.add_millis(60_000)).await.unwrap());
    assert!(store.retry_later(e.id, 1, jobs_model::AttemptStatus::Failed, "exit 1", start, start).await.unwrap());
    assert!(store.start_attempt(e.id, 2, executor, start, start.add_millis(60_000)).await.unwrap());
    if status != ExecutionStatus::Running {
        assert!(store.finish_execution(e.id, status, None, None, finished).await.unwrap());
    }
}

async fn remaining(store: &Store) -> BTreeSet<ExecutionId> {
    store.list_executions(&ExecutionFilter::default()).await.unwrap().into_iter().map(|e| e.id).collect()
}

fn ids<'a>(executions: impl IntoIterator<Item = &'a Execution>) -> BTreeSet<ExecutionId> {
    executions.into_iter().map(|e| e.id).collect()
}

/// The execution, its attempts and its log lines are all gone.
async fn assert_gone(store: &Store, id: ExecutionId) {
    assert_eq!(store.get_execution(id).await.unwrap(), None, "{id}");
    assert!(store.attempts(id).await.unwrap().is_empty(), "attempts of {id}");
    assert!(store.logs(id, None, 0).await.unwrap().is_empty(), "logs of {id}");
}

/// The execution, its attempts (when it started) and its three log lines are all there.
async fn assert_kept(store: &Store, id: ExecutionId) {
    let kept = store.get_execution(id).await.unwrap().unwrap_or_else(|| panic!("{id} was deleted"));
    let attempts = if kept.status == ExecutionStatus::Pending { 0 } else { 2 };
    assert_eq!(store.attempts(id).await.unwrap().len(), attempts, "attempts of {id}");
    assert_eq!(store.logs(id, None, 0).await.unwrap().len(), 3, "logs of {id}");
}

pub(crate) async fn retention_deletes_exactly_what_is_old(store: &Store) {
    let (a, b) = (task("aged-a"), task("aged-b"));
    store.insert_task(&a).await.unwrap();
    store.insert_task(&b).await.unwrap();
    let cutoff = at(100_000);
    let mut old = Vec::new();
    for (n, status) in [
        ExecutionStatus::Success,
        ExecutionStatus::Failed,
        ExecutionStatus::Timeout,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Skipped,
    ]
    .into_iter()
    .enumerate()
    {
        let t = if n % 2 == 0 { &a } else { &b };
        let e = execution(t, TriggerType::Manual, at(n as i64 * 1_000));
        insert(store, &e, status, at(50_000 + n as i64)).await;
        old.push(e);
    }
    // A missed slot is written final, with no attempt.
    let missed = Execution {
        status: ExecutionStatus::Missed,
        finished_at: Some(at(1)),
        ..execution(&a, TriggerType::Cron, at(-1_000))
    };
    store.insert_execution(&missed).await.unwrap();
    store.append_logs(missed.id, &["missed".to_owned()], at(1)).await.unwrap();

    // Open executions stay however old they are; final ones stay unless they ended strictly before the cutoff.
    let old_pending = execution(&a, TriggerType::Manual, T0);
    insert(store, &old_pending, ExecutionStatus::Pending, T0).await;
    let old_running = execution(&b, TriggerType::Manual, T0);
    insert(store, &old_running, ExecutionStatus::Running, T0).await;
    let at_cutoff = execution(&a, TriggerType::Manual, at(2_000));
    insert(store, &at_cutoff, ExecutionStatus::Success, cutoff).await;
    // Created long ago, but it ended only recently.
    let ended_late = execution(&b, TriggerType::Manual, at(3_000));
    insert(store, &ended_late, ExecutionStatus::Failed, at(150_000)).await;
    let recent = execution(&a, TriggerType::Manual, at(200_000));
    insert(store, &recent, ExecutionStatus::Success, at(200_001)).await;

    let mut batches = Vec::new();
    loop {
        let deleted = store.delete_finished_before(cutoff, BATCH).await.unwrap();
        batches.push(deleted);
        if deleted < BATCH {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 2, 0], "six old final executions, two per batch");

    let kept = [&old_pending, &old_running, &at_cutoff, &ended_late, &recent];
    assert_eq!(remaining(store).await, ids(kept));
    for e in kept {
        assert_kept(store, e.id).await;
    }
    for e in old.iter().chain([&missed]) {
        assert_gone(store, e.id).await;
    }
    assert_eq!(store.delete_finished_before(at(1_000_000), 100).await.unwrap(), 3, "only the final ones");
    assert_eq!(remaining(store).await, ids([&old_pending, &old_running]));
    assert_kept(store, old_running.id).await;
}

pub(crate) async fn retention_keeps_the_newest_per_task(store: &Store) {
    let (a, b, c) = (task("counted-a"), task("counted-b"), task("counted-c"));
    for t in [&a, &b, &c] {
        store.insert_task(t).await.unwrap();
    }
    // Ids are creation order: make each task's executions in the order listed, oldest first.
    let statuses_a = [
        ExecutionStatus::Success,
        ExecutionStatus::Pending,
        ExecutionStatus::Failed,
        ExecutionStatus::Running,
        ExecutionStatus::Timeout,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Skipped,
        ExecutionStatus::Success,
    ];
    let mut of_a = Vec::new();
    for (n, status) in statuses_a.into_iter().enumerate() {
        let e = execution(&a, TriggerType::Manual, at(n as i64 * 1_000));
        insert(store, &e, status, at(n as i64 * 1_000 + 500)).await;
        of_a.push(e);
    }
    let mut of_b = Vec::new();
    for n in 0..2 {
        let e = execution(&b, TriggerType::Manual, at(n * 1_000));
        insert(store, &e, ExecutionStatus::Success, at(n * 1_000 + 500)).await;
        of_b.push(e);
    }
    let mut of_c = Vec::new();
    for n in 0..3 {
        let e = execution(&c, TriggerType::Manual, at(n * 1_000));
        insert(store, &e, ExecutionStatus::Failed, at(n * 1_000 + 500)).await;
        of_c.push(e);
    }
    assert!(of_a.windows(2).chain(of_c.windows(2)).all(|pair| pair[0].id < pair[1].id), "ids in creation order");

    let keep = 2;
    let mut over = store.tasks_with_more_final_than(keep).await.unwrap();
    over.sort();
    let mut expected = vec![a.id, c.id];
    expected.sort();
    assert_eq!(over, expected, "a has six final executions, b two, c three");

    let mut batches = Vec::new();
    for task_id in over {
        loop {
            let deleted = store.delete_final_beyond_newest(task_id, keep, BATCH).await.unwrap();
            batches.push((task_id, deleted));
            if deleted < BATCH {
                break;
            }
        }
    }
    let mut expected_batches = vec![(a.id, 2), (a.id, 2), (a.id, 0), (c.id, 1)];
    if c.id < a.id {
        expected_batches.rotate_right(1);
    }
    assert_eq!(batches, expected_batches);

    // Of a: the two newest final ones (the last two), plus the pending and running ones however old.
    let kept = [&of_a[1], &of_a[3], &of_a[6], &of_a[7], &of_b[0], &of_b[1], &of_c[1], &of_c[2]];
    assert_eq!(remaining(store).await, ids(kept));
    for e in kept {
        assert_kept(store, e.id).await;
    }
    for e in [&of_a[0], &of_a[2], &of_a[4], &of_a[5], &of_c[0]] {
        assert_gone(store, e.id).await;
    }
    assert!(store.tasks_with_more_final_than(keep).await.unwrap().is_empty());
    assert_eq!(store.delete_final_beyond_newest(a.id, keep, BATCH).await.unwrap(), 0);

    // Keeping none deletes every final execution of the task, and only those.
    assert_eq!(store.delete_final_beyond_newest(a.id, 0, 100).await.unwrap(), 2);
    assert_eq!(remaining(store).await, ids([&of_a[1], &of_a[3], &of_b[0], &of_b[1], &of_c[1], &of_c[2]]));
}
