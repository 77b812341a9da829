//! The plan as a table: what is planned, and what comes due by when.

use jobs_model::{TaskId, Timestamp};

use crate::plan::{Entry, Plan};

fn entry(id: TaskId, next: i64) -> Entry {
    Entry {
        id,
        updated_at: Timestamp::from_millis(0),
        loaded: None,
        next: Timestamp::from_millis(next),
        stored: Some(Timestamp::from_millis(next)),
        generation: 0,
    }
}

/// Plans `(task, next)` in order (a task planned twice is replaced), then takes what is due by each horizon.
#[track_caller]
fn check(planned: &[(usize, i64)], horizons: &[(i64, &[(usize, i64)])]) {
    let ids: Vec<TaskId> = (0..10).map(|_| TaskId::new()).collect();
    let mut plan = Plan::default();
    for (task, next) in planned {
        plan.push(entry(ids[*task], *next));
    }
    for (horizon, expected) in horizons {
        let due: Vec<(usize, i64)> = plan
            .take_due(Timestamp::from_millis(*horizon))
            .iter()
            .filter_map(|entry| ids.iter().position(|id| *id == entry.id).map(|task| (task, entry.next.as_millis())))
            .collect();
        assert_eq!(&due, expected, "due by {horizon}");
    }
}

#[test]
fn due_entries() {
    check(&[(0, 1_000), (1, 500), (2, 3_000)], &[(400, &[]), (1_000, &[(1, 500), (0, 1_000)]), (5_000, &[(2, 3_000)])]);
    // A replaced entry comes due at its new slot only, once.
    check(&[(0, 1_000), (0, 2_000)], &[(1_500, &[]), (2_000, &[(0, 2_000)])]);
    check(&[(0, 2_000), (0, 1_000)], &[(1_000, &[(0, 1_000)]), (3_000, &[])]);
}

#[test]
fn a_task_changed_many_times_holds_one_entry_and_a_bounded_heap() {
    let id = TaskId::new();
    let mut plan = Plan::default();
    // A rarely firing task changed 300,000 times: its old slots would all stay in the heap until they came due.
    for change in 0..300_000 {
        plan.push(entry(id, 86_400_000 + change));
    }
    assert_eq!(plan.len(), 1);
    assert!(plan.heap_len() <= 2 + crate::plan::SLACK, "heap holds {} items for one task", plan.heap_len());
    assert_eq!(plan.earliest(), Some(Timestamp::from_millis(86_400_000 + 299_999)));
}
