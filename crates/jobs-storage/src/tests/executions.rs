//! Executions: manual inserts, listing, the final-status rule, attempts, logs and running counts.

use jobs_model::{
    AttemptStatus, ErrorKind, Execution, ExecutionId, ExecutionMode, ExecutionStatus, ExecutorId, TriggerType,
};

use crate::tests::{T0, at, execution, task};
use crate::{Change, ExecutionFilter, PlannedFire, Store, TaskDeletion};

pub(crate) async fn manual_executions_never_collide(store: &Store) {
    let t = task("manual");
    store.insert_task(&t).await.unwrap();
    let first = execution(&t, TriggerType::Manual, T0);
    let second = execution(&t, TriggerType::Manual, T0);
    let retry = execution(&t, TriggerType::Retry, T0);
    for e in [&first, &second, &retry] {
        store.insert_execution(e).await.unwrap();
    }
    let err = store.insert_execution(&first).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // A cron slot is taken once, whichever way it is written.
    store.insert_execution(&execution(&t, TriggerType::Cron, T0)).await.unwrap();
    let err = store.insert_execution(&execution(&t, TriggerType::Cron, T0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let fire = PlannedFire {
        task_id: t.id,
        expected_next: Some(T0),
        new_next: Some(at(1_000)),
        executions: vec![execution(&t, TriggerType::Cron, T0)],
    };
    assert!(store.record_fires(None, "k", &[fire]).await.unwrap().is_empty());
}

pub(crate) async fn list_executions_filters_and_cursor(store: &Store) {
    let a = task("a");
    let b = task("b");
    store.insert_task(&a).await.unwrap();
    store.insert_task(&b).await.unwrap();
    let mut all = Vec::new();
    for n in 0..6 {
        let t = if n % 2 == 0 { &a } else { &b };
        let trigger = if n < 4 { TriggerType::Cron } else { TriggerType::Manual };
        let e = execution(t, trigger, at(n * 1_000));
        store.insert_execution(&e).await.unwrap();
        all.push(e);
    }
    let executor = ExecutorId::new();
    assert!(store.start_attempt(all[1].id, 1, executor, at(1_500), at(1_500 + 60_000)).await.unwrap());
    let ids = |list: Vec<jobs_model::Execution>| list.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let newest_first: Vec<ExecutionId> = all.iter().rev().map(|e| e.id).collect();

    assert_eq!(ids(store.list_executions(&ExecutionFilter::default()).await.unwrap()), newest_first);
    let page1 = store.list_executions(&ExecutionFilter { limit: 4, ..ExecutionFilter::default() }).await.unwrap();
    let page2 = store
        .list_executions(&ExecutionFilter { limit: 4, before: Some(page1[3].id), ..ExecutionFilter::default() })
        .await
        .unwrap();
    assert_eq!([ids(page1), ids(page2)].concat(), newest_first);

    let of_a = store.list_executions(&ExecutionFilter { task_id: Some(a.id), ..ExecutionFilter::default() }).await;
    assert_eq!(ids(of_a.unwrap()), [all[4].id, all[2].id, all[0].id]);
    let manual = store
        .list_executions(&ExecutionFilter { trigger_type: Some(TriggerType::Manual), ..ExecutionFilter::default() })
        .await;
    assert_eq!(ids(manual.unwrap()), [all[5].id, all[4].id]);
    let running = store
        .list_executions(&ExecutionFilter { status: Some(ExecutionStatus::Running), ..ExecutionFilter::default() })
        .await;
    assert_eq!(ids(running.unwrap()), [all[1].id]);
    let on_executor =
        store.list_executions(&ExecutionFilter { executor_id: Some(executor), ..ExecutionFilter::default() }).await;
    assert_eq!(ids(on_executor.unwrap()), [all[1].id]);
    let window = ExecutionFilter { from: Some(at(1_000)), to: Some(at(3_000)), ..ExecutionFilter::default() };
    assert_eq!(ids(store.list_executions(&window).await.unwrap()), [all[3].id, all[2].id, all[1].id]);
    let combined =
        ExecutionFilter { task_id: Some(b.id), from: Some(at(2_000)), limit: 1, ..ExecutionFilter::default() };
    assert_eq!(ids(store.list_executions(&combined).await.unwrap()), [all[5].id]);
}

pub(crate) async fn executions_with_status_oldest_first(store: &Store) {
    let t = task("recover");
    store.insert_task(&t).await.unwrap();
    let es: Vec<_> = (0..4).map(|n| execution(&t, TriggerType::Cron, at(n * 1_000))).collect();
    for e in &es {
        store.insert_execution(e).await.unwrap();
    }
    store.finish_execution(es[1].id, ExecutionStatus::Skipped, None, None, at(10)).await.unwrap();
    let pending = store.executions_with_status(ExecutionStatus::Pending, 2).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [es[0].id, es[2].id]);
    let skipped = store.executions_with_status(ExecutionStatus::Skipped, 0).await.unwrap();
    assert_eq!(skipped.len(), 1);
}

pub(crate) async fn final_status_never_changes(store: &Store) {
    let t = task("lifecycle");
    store.insert_task(&t).await.unwrap();
    let e = execution(&t, TriggerType::Cron, T0);
    store.insert_execution(&e).await.unwrap();
    let executor = ExecutorId::new();

    assert!(store.start_attempt(e.id, 1, executor, at(10), at(10 + 60_000)).await.unwrap());
    let running = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(
        (running.status, running.executor_id, running.attempt, running.started_at),
        (ExecutionStatus::Running, Some(executor), 1, Some(at(10)))
    );

    let result = serde_json::json!({"rows": 42});
    assert!(store.finish_execution(e.id, ExecutionStatus::Success, Some(&result), None, at(20)).await.unwrap());
    // A late or repeated outcome does not apply.
    assert!(!store.finish_execution(e.id, ExecutionStatus::Failed, None, Some("late"), at(30)).await.unwrap());
    assert!(!store.start_attempt(e.id, 2, executor, at(40), at(40 + 60_000)).await.unwrap());
    let done = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Success);
    assert_eq!(done.result, Some(result));
    assert_eq!((done.error, done.attempt, done.started_at, done.finished_at), (None, 1, Some(at(10)), Some(at(20))));
    assert_eq!(store.attempts(e.id).await.unwrap().len(), 1);

    // A pending execution can be cancelled without ever starting.
    let other = execution(&t, TriggerType::Manual, T0);
    store.insert_execution(&other).await.unwrap();
    assert!(store.finish_execution(other.id, ExecutionStatus::Cancelled, None, Some("by user"), at(5)).await.unwrap());
    let cancelled = store.get_execution(other.id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.started_at, cancelled.error.as_deref()),
        (ExecutionStatus::Cancelled, None, Some("by user"))
    );

    assert!(!store.finish_execution(ExecutionId::new(), ExecutionStatus::Success, None, None, T0).await.unwrap());
    assert!(!store.start_attempt(ExecutionId::new(), 1, executor, T0, T0).await.unwrap());
    let err = store.finish_execution(other.id, ExecutionStatus::Running, None, None, T0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
}

pub(crate) async fn attempts_are_recorded(store: &Store) {
    let t = task("retried");
    store.insert_task(&t).await.unwrap();
    let e = execution(&t, TriggerType::Cron, T0);
    store.insert_execution(&e).await.unwrap();
    let (x, y, z) = (ExecutorId::new(), ExecutorId::new(), ExecutorId::new());

    assert!(store.start_attempt(e.id, 1, x, at(1), at(1 + 60_000)).await.unwrap());
    assert!(store.set_attempt_status(e.id, 1, AttemptStatus::Running, None, at(2)).await.unwrap());
    assert!(store.set_attempt_status(e.id, 1, AttemptStatus::Failed, Some("exit 1"), at(3)).await.unwrap());
    // An attempt that ended keeps its status.
    assert!(!store.set_attempt_status(e.id, 1, AttemptStatus::Running, None, at(3)).await.unwrap());
    assert!(!store.start_attempt(e.id, 1, y, at(4), at(4 + 60_000)).await.unwrap(), "attempt 1 is claimed once");
    assert!(!store.start_attempt(e.id, 3, y, at(4), at(4 + 60_000)).await.unwrap(), "attempts are claimed in order");
    assert!(store.start_attempt(e.id, 2, z, at(5), at(5 + 60_000)).await.unwrap());
    assert!(
        store.finish_execution(e.id, ExecutionStatus::Timeout, None, Some("no answer in 60s"), at(6)).await.unwrap()
    );

    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    let (first, second) = (&attempts[0], &attempts[1]);
    assert_eq!((first.attempt, first.executor_id, first.status), (1, Some(x), AttemptStatus::Failed));
    assert_eq!((first.started_at, first.finished_at, first.error.as_deref()), (at(1), Some(at(3)), Some("exit 1")));
    assert_eq!((second.attempt, second.executor_id, second.status), (2, Some(z), AttemptStatus::Timeout));
    assert_eq!((second.started_at, second.finished_at), (at(5), Some(at(6))));
    assert_eq!(second.error.as_deref(), Some("no answer in 60s"));
    let execution = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((execution.started_at, execution.attempt), (Some(at(1)), 2));

    let err = store.set_attempt_status(e.id, 9, AttemptStatus::Failed, None, at(7)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(store.attempts(ExecutionId::new()).await.unwrap().is_empty());
}

pub(crate) async fn batched_changes_apply_like_single_ones(store: &Store) {
    let t = task("batched");
    store.insert_task(&t).await.unwrap();
    let (a, b, c) = (
        execution(&t, TriggerType::Manual, T0),
        execution(&t, TriggerType::Manual, T0),
        execution(&t, TriggerType::Manual, T0),
    );
    for e in [&a, &b, &c] {
        store.insert_execution(e).await.unwrap();
    }
    let x = ExecutorId::new();
    let claim = |id, attempt| Change::Claim { id, attempt, executor_id: x, at: at(1), deadline: at(60_001) };
    let finish = |id, attempt, status| Change::Finish {
        id,
        attempt,
        status,
        result: Some(serde_json::json!({"rows": 3})),
        error: None,
        logs: vec![format!("{status} reported")],
        at: at(3),
    };
    let applied = store
        .apply_changes(&[
            claim(a.id, 1),
            claim(b.id, 1),
            claim(b.id, 1),
            claim(c.id, 2),
            Change::Accepted { id: a.id, attempt: 1, at: at(2) },
            finish(b.id, 1, ExecutionStatus::Success),
            finish(b.id, 1, ExecutionStatus::Failed),
            Change::Accepted { id: b.id, attempt: 1, at: at(4) },
        ])
        .await
        .unwrap();
    // The second claim of b, the out-of-order claim of c and the second finish of b change nothing, exactly as the
    // single-change methods would; first attempts' accepted marks share one statement and always count as applied
    // (the late mark of b changes nothing either).
    assert_eq!(applied, [true, true, false, false, true, true, false, true]);
    let attempts = store.attempts(a.id).await.unwrap();
    assert_eq!((attempts.len(), attempts[0].status), (1, AttemptStatus::Running));
    let b_now = store.get_execution(b.id).await.unwrap().unwrap();
    assert_eq!((b_now.status, b_now.finished_at), (ExecutionStatus::Success, Some(at(3))));
    assert_eq!(b_now.result, Some(serde_json::json!({"rows": 3})));
    assert_eq!(store.attempts(b.id).await.unwrap()[0].status, AttemptStatus::Success);
    // The lines reported with an end land with it, and only with an end that applied.
    let logs: Vec<String> = store.logs(b.id, None, 0).await.unwrap().into_iter().map(|line| line.message).collect();
    assert_eq!(logs, ["success reported"]);
    assert_eq!(store.get_execution(c.id).await.unwrap().unwrap().status, ExecutionStatus::Pending);
    assert!(store.apply_changes(&[]).await.unwrap().is_empty());
}

pub(crate) async fn logs_in_order_and_pages(store: &Store) {
    let id = ExecutionId::new();
    let other = ExecutionId::new();
    let lines: Vec<String> = (0..5).map(|n| format!("line {n} ✓ ünïcode")).collect();
    store.append_logs(id, &lines[..3], at(1)).await.unwrap();
    store.append_logs(other, &["elsewhere".to_owned()], at(1)).await.unwrap();
    store.append_logs(id, &lines[3..], at(2)).await.unwrap();
    store.append_logs(id, &[], at(3)).await.unwrap();

    let all = store.logs(id, None, 0).await.unwrap();
    assert_eq!(all.iter().map(|l| l.message.clone()).collect::<Vec<_>>(), lines);
    assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!((all[0].at, all[4].at), (at(1), at(2)));

    let page1 = store.logs(id, None, 2).await.unwrap();
    let page2 = store.logs(id, Some(page1[1].seq), 2).await.unwrap();
    let page3 = store.logs(id, Some(page2[1].seq), 2).await.unwrap();
    assert_eq!([page1, page2, page3].concat(), all);
    assert!(store.logs(id, Some(all[4].seq), 10).await.unwrap().is_empty());

    let many: Vec<String> = (0..2_500).map(|n| format!("bulk {n}")).collect();
    store.append_logs(other, &many, at(4)).await.unwrap();
    let stored = store.logs(other, None, 0).await.unwrap();
    assert_eq!(stored.len(), 2_501);
    assert_eq!(stored[2_500].message, "bulk 2499");
}

pub(crate) async fn running_counts_by_executor(store: &Store) {
    let t = task("counted");
    store.insert_task(&t).await.unwrap();
    let (x, y) = (ExecutorId::new(), ExecutorId::new());
    let es: Vec<_> = (0..4).map(|n| execution(&t, TriggerType::Manual, at(n))).collect();
    for e in &es {
        store.insert_execution(e).await.unwrap();
    }
    store.start_attempt(es[0].id, 1, x, at(10), at(10 + 60_000)).await.unwrap();
    store.start_attempt(es[1].id, 1, x, at(10), at(10 + 60_000)).await.unwrap();
    store.start_attempt(es[2].id, 1, y, at(10), at(10 + 60_000)).await.unwrap();
    store.finish_execution(es[2].id, ExecutionStatus::Success, None, None, at(11)).await.unwrap();
    let counts = store.running_counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts.get(&x), Some(&2));
}

pub(crate) async fn retries_timeouts_and_queues(store: &Store) {
    let t = task("retrying");
    store.insert_task(&t).await.unwrap();
    let e = execution(&t, TriggerType::Manual, at(0));
    store.insert_execution(&e).await.unwrap();
    let x = ExecutorId::new();
    assert_eq!(store.pending_candidates(at(0), 100, None).await.unwrap().len(), 1);
    let open = store.open_executions_of_task(t.id).await.unwrap();
    assert_eq!(open.iter().filter(|o| o.status == ExecutionStatus::Pending).count(), 1);
    assert_eq!(open.iter().filter(|o| o.status == ExecutionStatus::Pending && o.id < e.id).count(), 0);

    assert!(store.start_attempt(e.id, 1, x, at(1), at(1_001)).await.unwrap());
    assert!(store.pending_candidates(at(2_000), 100, None).await.unwrap().is_empty());
    assert!(store.running_overdue(at(1_000), 0).await.unwrap().is_empty());
    assert_eq!(store.running_overdue(at(1_002), 0).await.unwrap().len(), 1);
    assert_eq!(store.running_on(x).await.unwrap().len(), 1);
    let open = store.open_executions_of_task(t.id).await.unwrap();
    assert_eq!(open.iter().filter(|o| o.status == ExecutionStatus::Running).count(), 1);

    assert!(!store.retry_later(e.id, 2, AttemptStatus::Timeout, "stale", at(5_000), at(1_002)).await.unwrap());
    assert!(store.retry_later(e.id, 1, AttemptStatus::Timeout, "timed out", at(5_000), at(1_002)).await.unwrap());
    let retried = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((retried.status, retried.retries, retried.retry_at), (ExecutionStatus::Pending, 1, Some(at(5_000))));
    assert!(store.pending_candidates(at(4_999), 100, None).await.unwrap().is_empty(), "not before retry_at");
    assert_eq!(store.pending_candidates(at(5_000), 100, None).await.unwrap().len(), 1);

    assert!(store.start_attempt(e.id, 2, x, at(5_001), at(65_000)).await.unwrap());
    assert!(
        !store.finish_attempt(e.id, 1, ExecutionStatus::Success, None, None, at(5_002)).await.unwrap(),
        "a replaced attempt changes nothing"
    );
    assert!(store.finish_attempt(e.id, 2, ExecutionStatus::Success, None, None, at(5_003)).await.unwrap());
    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![AttemptStatus::Timeout, AttemptStatus::Success]
    );
    let done = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.deadline_at), (ExecutionStatus::Success, None));
}

/// Twelve sequential tasks with many fires queued, then a trigger of a parallel task and a due retry of a skip task:
/// the candidates are each task's head and every due execution of the others, so nothing hides behind the queues.
pub(crate) async fn pending_candidates_are_fair(store: &Store) {
    let mut sequential = Vec::new();
    for n in 0..12 {
        let mut t = task(&format!("queued-{n}"));
        t.spec.execution_mode = ExecutionMode::Sequential;
        store.insert_task(&t).await.unwrap();
        sequential.push(t);
    }
    for slot in 0..100 {
        let batch: Vec<Execution> =
            sequential.iter().map(|t| execution(t, TriggerType::Manual, at(slot * 1_000))).collect();
        for e in &batch {
            store.insert_execution(e).await.unwrap();
        }
    }
    let mut parallel = task("triggered");
    parallel.spec.execution_mode = ExecutionMode::Parallel;
    store.insert_task(&parallel).await.unwrap();
    let trigger = execution(&parallel, TriggerType::Manual, at(50_000));
    store.insert_execution(&trigger).await.unwrap();
    let mut skip = task("retried");
    skip.spec.execution_mode = ExecutionMode::Skip;
    store.insert_task(&skip).await.unwrap();
    let retry = execution(&skip, TriggerType::Manual, at(0));
    store.insert_execution(&retry).await.unwrap();
    let x = ExecutorId::new();
    assert!(store.start_attempt(retry.id, 1, x, at(1), at(1_001)).await.unwrap());
    assert!(store.retry_later(retry.id, 1, AttemptStatus::Failed, "failed", at(60_000), at(2)).await.unwrap());

    let candidates = store.pending_candidates(at(200_000), 1_000, None).await.unwrap();
    let ids: Vec<ExecutionId> = candidates.iter().map(|e| e.id).collect();
    assert!(ids.contains(&trigger.id), "the trigger is a candidate");
    assert!(ids.contains(&retry.id), "the due retry is a candidate");
    assert_eq!(candidates.len(), 14, "one head per sequential task, plus the trigger and the retry");
    for t in &sequential {
        assert_eq!(candidates.iter().filter(|e| e.task_id == t.id).count(), 1, "only the head of `{}`", t.spec.name);
    }
    // Not yet due: the retry waits for its time; a sequential head not due hides what is behind it.
    let early = store.pending_candidates(at(59_999), 1_000, None).await.unwrap();
    assert!(!early.iter().any(|e| e.id == retry.id));
    assert_eq!(store.open_executions_of_task(skip.id).await.unwrap().len(), 1);
    assert_eq!(store.open_executions_of_task(sequential[0].id).await.unwrap().len(), 100);
}

/// A trigger needs its task; deleting a task ends its open executions in the same transaction, or refuses.
pub(crate) async fn triggers_and_deletion_see_each_other(store: &Store) {
    let t = task("deleted");
    store.insert_task(&t).await.unwrap();
    let first = execution(&t, TriggerType::Manual, at(0));
    assert!(store.insert_trigger(&first).await.unwrap());
    let x = ExecutorId::new();
    assert!(store.start_attempt(first.id, 1, x, at(1), at(60_000)).await.unwrap());
    let second = execution(&t, TriggerType::Manual, at(2));
    assert!(store.insert_trigger(&second).await.unwrap());

    let refused = store.delete_task_ending_open(t.id, false, "gone", at(3)).await.unwrap();
    assert_eq!(refused, TaskDeletion::Busy(2));
    assert!(store.get_task(t.id).await.unwrap().is_some());

    let TaskDeletion::Deleted(ended) = store.delete_task_ending_open(t.id, true, "gone", at(4)).await.unwrap() else {
        panic!("the task is deleted");
    };
    assert_eq!(ended.iter().map(|e| e.id).collect::<Vec<_>>(), vec![first.id, second.id]);
    assert_eq!(ended[0].status, ExecutionStatus::Running, "returned as they were, for their instances to be told");
    for e in [&first, &second] {
        let stored = store.get_execution(e.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.error.as_deref()), (ExecutionStatus::Cancelled, Some("gone")));
    }
    assert_eq!(store.attempts(first.id).await.unwrap()[0].status, AttemptStatus::Cancelled);
    assert!(store.get_task(t.id).await.unwrap().is_none());
    assert!(!store.insert_trigger(&execution(&t, TriggerType::Manual, at(5))).await.unwrap(), "no task, no trigger");
    assert_eq!(store.delete_task_ending_open(t.id, true, "gone", at(6)).await.unwrap(), TaskDeletion::NotFound);
}
