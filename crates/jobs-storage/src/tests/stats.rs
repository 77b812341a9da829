//! The console's summaries: finished executions per interval, the next fires, each task's latest outcomes.

use jobs_model::{ExecutionStatus, Timestamp, TriggerType};

use crate::tests::{T0, at, execution, task};
use crate::{FinishedCount, Store};

pub(crate) async fn finished_counts_by_interval(store: &Store) {
    let (a, b) = (task("a"), task("b"));
    store.insert_task(&a).await.unwrap();
    store.insert_task(&b).await.unwrap();
    let ended = |task, status, finished: Option<Timestamp>| {
        let mut e = execution(task, TriggerType::Cron, finished.unwrap_or(T0));
        e.status = status;
        e.finished_at = finished;
        e
    };
    for e in [
        ended(&a, ExecutionStatus::Success, Some(at(1_000))),
        ended(&a, ExecutionStatus::Failed, Some(at(59_999))),
        ended(&a, ExecutionStatus::Success, Some(at(2_000))),
        ended(&b, ExecutionStatus::Success, Some(at(60_000))),
        ended(&b, ExecutionStatus::Timeout, Some(at(-1))),
        ended(&b, ExecutionStatus::Pending, None),
    ] {
        store.insert_execution(&e).await.unwrap();
    }
    let mut counts = store.finished_counts(T0, 60_000).await.unwrap();
    counts.sort_by_key(|count| (count.bucket, count.status.as_str()));
    let count = |bucket, status, count| FinishedCount { bucket, status, count };
    assert_eq!(
        counts,
        [
            count(0, ExecutionStatus::Failed, 1),
            count(0, ExecutionStatus::Success, 2),
            count(1, ExecutionStatus::Success, 1)
        ]
    );
}

pub(crate) async fn next_fires_and_recent_outcomes(store: &Store) {
    let (mut a, mut b, mut off) = (task("a"), task("b"), task("off"));
    a.next_fire_at = Some(at(5_000));
    b.next_fire_at = Some(at(1_000));
    off.spec.enabled = false;
    for t in [&a, &b, &off] {
        store.insert_task(t).await.unwrap();
    }
    let names = |tasks: Vec<jobs_model::Task>| tasks.into_iter().map(|t| t.spec.name).collect::<Vec<_>>();
    assert_eq!(names(store.next_fires(10).await.unwrap()), ["b", "a"]);
    assert_eq!(names(store.next_fires(1).await.unwrap()), ["b"]);

    for status in [ExecutionStatus::Success, ExecutionStatus::Failed, ExecutionStatus::Running] {
        let mut e = execution(&a, TriggerType::Manual, T0);
        e.status = status;
        store.insert_execution(&e).await.unwrap();
    }
    let recent = store.recent_statuses(&[a.id, b.id], 2).await.unwrap();
    assert_eq!(recent[&a.id], [ExecutionStatus::Running, ExecutionStatus::Failed], "newest first");
    assert!(recent[&b.id].is_empty());
}
