//! Planning writes: the unique cron slot, the `next_fire_at` guard, the epoch guard and large batches.

use jobs_model::{ErrorKind, Execution, ExecutionId, ExecutionStatus, TriggerType};

use crate::tests::{T0, at, execution, task};
use crate::{Error, ExecutionFilter, PlannedFire, Store};

fn fire(t: &jobs_model::Task, expected: i64, new: i64, executions: Vec<Execution>) -> PlannedFire {
    PlannedFire { task_id: t.id, expected_next: Some(at(expected)), new_next: Some(at(new)), executions }
}

pub(crate) async fn record_fires_inserts_and_advances(store: &Store) {
    let a = task("a");
    let b = task("b");
    store.insert_task(&a).await.unwrap();
    store.insert_task(&b).await.unwrap();
    let ea = execution(&a, TriggerType::Cron, T0);
    let mut eb = execution(&b, TriggerType::Cron, T0);
    eb.status = ExecutionStatus::Skipped;
    let fires = [fire(&a, 0, 1_000, vec![ea.clone()]), fire(&b, 0, 1_000, vec![eb.clone()])];

    let ids = store.record_fires(None, "jobs_leader", &fires).await.unwrap();
    assert_eq!(ids, [ea.id, eb.id]);
    assert_eq!(store.get_execution(ea.id).await.unwrap(), Some(ea));
    assert_eq!(store.get_execution(eb.id).await.unwrap().unwrap().status, ExecutionStatus::Skipped);
    for t in [&a, &b] {
        assert_eq!(store.get_task(t.id).await.unwrap().unwrap().next_fire_at, Some(at(1_000)));
    }

    // Two steps of one task in one batch chain their guards; a fire may advance without an execution.
    let e1 = execution(&a, TriggerType::Cron, at(1_000));
    let fires = [fire(&a, 1_000, 2_000, vec![e1.clone()]), fire(&a, 2_000, 3_000, vec![])];
    assert_eq!(store.record_fires(None, "jobs_leader", &fires).await.unwrap(), [e1.id]);
    assert_eq!(store.get_task(a.id).await.unwrap().unwrap().next_fire_at, Some(at(3_000)));

    // A fire can end a schedule (an `@at` task): the task is disabled and kept.
    let last = PlannedFire { task_id: b.id, expected_next: Some(at(1_000)), new_next: None, executions: vec![] };
    store.record_fires(None, "jobs_leader", &[last]).await.unwrap();
    let ended = store.get_task(b.id).await.unwrap().unwrap();
    assert_eq!((ended.next_fire_at, ended.spec.enabled), (None, false));
    assert!(store.get_task(a.id).await.unwrap().unwrap().spec.enabled, "a schedule still running stays enabled");
    assert!(store.record_fires(None, "jobs_leader", &[]).await.unwrap().is_empty());
}

pub(crate) async fn record_fires_moves_tasks_to_different_next_fires_in_one_batch(store: &Store) {
    let tasks: Vec<_> = (0..5).map(|n| task(&format!("distinct-{n}"))).collect();
    for t in &tasks {
        store.insert_task(t).await.unwrap();
    }
    let last = PlannedFire { task_id: tasks[4].id, expected_next: Some(T0), new_next: None, executions: vec![] };
    let mut fires: Vec<PlannedFire> =
        tasks[..4].iter().enumerate().map(|(n, t)| fire(t, 0, 1_000 * (n as i64 + 1), vec![])).collect();
    fires.push(last);
    store.record_fires(None, "jobs_leader", &fires).await.unwrap();
    for (n, t) in tasks[..4].iter().enumerate() {
        let stored = store.get_task(t.id).await.unwrap().unwrap();
        assert_eq!(stored.next_fire_at, Some(at(1_000 * (n as i64 + 1))), "{}", t.spec.name);
        assert!(stored.spec.enabled);
    }
    let ended = store.get_task(tasks[4].id).await.unwrap().unwrap();
    assert_eq!((ended.next_fire_at, ended.spec.enabled), (None, false));
}

pub(crate) async fn record_fires_ignores_taken_slots(store: &Store) {
    let t = task("slot");
    store.insert_task(&t).await.unwrap();
    let first = execution(&t, TriggerType::Cron, T0);
    assert_eq!(store.record_fires(None, "k", &[fire(&t, 0, 1_000, vec![first.clone()])]).await.unwrap(), [first.id]);

    // Another planner writes the same slot (its guard happens to hold): the unique key drops it.
    let again = execution(&t, TriggerType::Cron, T0);
    let next = execution(&t, TriggerType::Cron, at(1_000));
    let ids =
        store.record_fires(None, "k", &[fire(&t, 1_000, 2_000, vec![again.clone(), next.clone()])]).await.unwrap();
    assert_eq!(ids, [next.id]);
    assert_eq!(store.get_execution(again.id).await.unwrap(), None);
    let all = store.list_executions(&ExecutionFilter { task_id: Some(t.id), ..ExecutionFilter::default() }).await;
    assert_eq!(all.unwrap().len(), 2);

    // The same slot twice in one batch is stored once.
    let x = execution(&t, TriggerType::Cron, at(2_000));
    let y = execution(&t, TriggerType::Cron, at(2_000));
    assert_eq!(store.record_fires(None, "k", &[fire(&t, 2_000, 3_000, vec![x.clone(), y])]).await.unwrap(), [x.id]);

    // A manual execution of a cron slot's time is no cron fire.
    store.insert_execution(&execution(&t, TriggerType::Manual, at(3_000))).await.unwrap();
    let cron = execution(&t, TriggerType::Cron, at(3_000));
    assert_eq!(store.record_fires(None, "k", &[fire(&t, 3_000, 4_000, vec![cron.clone()])]).await.unwrap(), [cron.id]);
}

pub(crate) async fn record_fires_skips_changed_tasks(store: &Store) {
    let changed = task("changed");
    let steady = task("steady");
    store.insert_task(&changed).await.unwrap();
    store.insert_task(&steady).await.unwrap();
    // The user edits the task after the planner read it.
    store.set_next_fire(changed.id, Some(at(30_000))).await.unwrap();
    let stale = execution(&changed, TriggerType::Cron, T0);
    let fine = execution(&steady, TriggerType::Cron, T0);
    let deleted = task("deleted");
    let fires = [
        fire(&changed, 0, 1_000, vec![stale.clone()]),
        fire(&steady, 0, 1_000, vec![fine.clone()]),
        fire(&deleted, 0, 1_000, vec![execution(&deleted, TriggerType::Cron, T0)]),
    ];
    assert_eq!(store.record_fires(None, "k", &fires).await.unwrap(), [fine.id]);
    assert_eq!(store.get_execution(stale.id).await.unwrap(), None);
    assert_eq!(store.get_task(changed.id).await.unwrap().unwrap().next_fire_at, Some(at(30_000)));

    // A paused task (no next fire) only matches a fire that expected none.
    store.set_next_fire(changed.id, None).await.unwrap();
    let resumed =
        PlannedFire { task_id: changed.id, expected_next: None, new_next: Some(at(5_000)), executions: vec![] };
    store.record_fires(None, "k", &[resumed]).await.unwrap();
    assert_eq!(store.get_task(changed.id).await.unwrap().unwrap().next_fire_at, Some(at(5_000)));
}

pub(crate) async fn record_fires_checks_the_epoch(store: &Store) {
    let t = task("led");
    store.insert_task(&t).await.unwrap();
    let e = execution(&t, TriggerType::Cron, T0);
    let fires = [fire(&t, 0, 1_000, vec![e.clone()])];

    // Nobody ever led: any epoch is stale.
    let err = store.record_fires(Some(1), "jobs_leader", &fires).await.unwrap_err();
    assert!(matches!(err, Error::Deposed { expected: 1, current: None, .. }), "{err:?}");

    let old = store.bump_epoch("jobs_leader", "s1", T0).await.unwrap();
    let new = store.bump_epoch("jobs_leader", "s2", at(1)).await.unwrap();
    let err = store.record_fires(Some(old), "jobs_leader", &fires).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(matches!(err, Error::Deposed { current: Some(current), .. } if current == new), "{err:?}");
    // Nothing was written.
    assert_eq!(store.get_execution(e.id).await.unwrap(), None);
    assert_eq!(store.get_task(t.id).await.unwrap().unwrap().next_fire_at, Some(T0));

    assert_eq!(store.record_fires(Some(new), "jobs_leader", &fires).await.unwrap(), [e.id]);
    // Another lock key has its own epochs.
    assert!(store.record_fires(Some(new), "other_cluster", &[]).await.is_err());
}

pub(crate) async fn record_fires_in_large_batches(store: &Store) {
    let tasks: Vec<_> = (0..1_200).map(|n| task(&format!("bulk_{n:04}"))).collect();
    for t in &tasks {
        store.insert_task(t).await.unwrap();
    }
    let fires: Vec<PlannedFire> =
        tasks.iter().map(|t| fire(t, 0, 1_000, vec![execution(t, TriggerType::Cron, T0)])).collect();
    let expected: Vec<ExecutionId> = fires.iter().map(|f| f.executions[0].id).collect();
    assert_eq!(store.record_fires(None, "k", &fires).await.unwrap(), expected);
    let pending = store.executions_with_status(ExecutionStatus::Pending, 0).await.unwrap();
    assert_eq!(pending.len(), 1_200);
    assert!(store.schedulable_tasks().await.unwrap().iter().all(|t| t.next_fire_at == Some(at(1_000))));

    // Replaying the batch (say, after a lost commit acknowledgement) writes nothing twice.
    assert!(store.record_fires(None, "k", &fires).await.unwrap().is_empty());
    // Neither does a second planner that read the new state and planned the same slots under new ids.
    let rival: Vec<PlannedFire> =
        tasks.iter().map(|t| fire(t, 1_000, 2_000, vec![execution(t, TriggerType::Cron, T0)])).collect();
    assert!(store.record_fires(None, "k", &rival).await.unwrap().is_empty());
    assert_eq!(store.executions_with_status(ExecutionStatus::Pending, 10).await.unwrap().len(), 10);
}
