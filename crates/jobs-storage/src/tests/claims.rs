//! Fires written with their first attempt claimed: the callback's one update, the first attempt's row written only
//! when it does not succeed, and the claims an earlier leader left settled by their instance's heartbeat.

use jobs_model::{AttemptStatus, Execution, ExecutionStatus, ExecutorId, Task, TriggerType};

use super::{at, execution, task};
use crate::{Change, OwnClaims, Store};

/// A cron fire of `task` claimed for `executor`, to be sent at `send_at`.
fn claimed(task: &Task, slot: i64, executor: ExecutorId, send_at: i64) -> Execution {
    Execution {
        executor_id: Some(executor),
        attempt: 1,
        started_at: Some(at(send_at)),
        deadline_at: Some(at(slot + 60_000)),
        epoch: Some(3),
        ..execution(task, TriggerType::Cron, at(slot))
    }
}

fn success(e: &Execution, attempt: u32, when: i64) -> Change {
    Change::Finish {
        id: e.id,
        attempt,
        status: ExecutionStatus::Success,
        result: Some(serde_json::json!({"ok": true})),
        error: None,
        logs: Vec::new(),
        at: at(when),
    }
}

pub(crate) async fn a_claimed_fire_succeeds_in_one_update(store: &Store) {
    let t = task("claimed");
    store.insert_task(&t).await.unwrap();
    let x = ExecutorId::new();
    let e = claimed(&t, 1_000, x, 0);
    store.insert_execution(&e).await.unwrap();
    let stored = store.get_execution(e.id).await.unwrap().unwrap();
    assert!(stored.is_preclaimed());
    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 1, "the claimed first attempt is shown from its execution");
    assert_eq!(
        (attempts[0].attempt, attempts[0].executor_id, attempts[0].status),
        (1, Some(x), AttemptStatus::Sending)
    );
    assert_eq!(attempts[0].started_at, at(0));

    // A report before the accepted mark applies; the mark that comes after it changes nothing.
    let applied = store.apply_changes(&[success(&e, 1, 1_005)]).await.unwrap();
    assert_eq!(applied, [true]);
    store.apply_changes(&[Change::Accepted { id: e.id, attempt: 1, at: at(1_006) }]).await.unwrap();
    let done = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.finished_at), (ExecutionStatus::Success, Some(at(1_005))));
    assert_eq!(done.result, Some(serde_json::json!({"ok": true})));
    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, attempts[0].finished_at), (AttemptStatus::Success, Some(at(1_005))));
    assert_eq!(store.apply_changes(&[success(&e, 1, 1_007)]).await.unwrap(), [false], "a final status never changes");
}

pub(crate) async fn an_accepted_mark_makes_a_claim_running(store: &Store) {
    let t = task("accepted");
    store.insert_task(&t).await.unwrap();
    let x = ExecutorId::new();
    let (a, b) = (claimed(&t, 1_000, x, 0), claimed(&t, 2_000, x, 1_000));
    for e in [&a, &b] {
        store.insert_execution(e).await.unwrap();
    }
    let marks =
        [Change::Accepted { id: a.id, attempt: 1, at: at(2) }, Change::Accepted { id: b.id, attempt: 1, at: at(3) }];
    assert_eq!(store.apply_changes(&marks).await.unwrap(), [true, true]);
    for e in [&a, &b] {
        let now = store.get_execution(e.id).await.unwrap().unwrap();
        assert_eq!((now.status, now.attempt, now.executor_id), (ExecutionStatus::Running, 1, Some(x)));
        assert_eq!(store.attempts(e.id).await.unwrap()[0].status, AttemptStatus::Running);
    }
    assert_eq!(store.running_on(x).await.unwrap().len(), 2);
}

pub(crate) async fn a_first_attempt_that_fails_gets_its_row(store: &Store) {
    let t = task("first-fails");
    store.insert_task(&t).await.unwrap();
    let (x, y) = (ExecutorId::new(), ExecutorId::new());
    let e = claimed(&t, 1_000, x, 500);
    store.insert_execution(&e).await.unwrap();
    assert!(store.retry_later(e.id, 1, AttemptStatus::Failed, "exit 1", at(5_000), at(2_000)).await.unwrap());
    let waiting = store.get_execution(e.id).await.unwrap().unwrap();
    assert!(!waiting.is_preclaimed(), "an execution waiting for its retry is not a claim");
    // A late success of the failed attempt does not apply to an execution waiting for its retry.
    assert_eq!(store.apply_changes(&[success(&e, 1, 2_500)]).await.unwrap(), [false]);
    assert!(store.start_attempt(e.id, 2, y, at(5_000), at(65_000)).await.unwrap());
    assert_eq!(store.apply_changes(&[success(&e, 2, 5_100)]).await.unwrap(), [true]);

    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    let (first, second) = (&attempts[0], &attempts[1]);
    assert_eq!(
        (first.executor_id, first.status, first.error.as_deref()),
        (Some(x), AttemptStatus::Failed, Some("exit 1"))
    );
    assert_eq!((first.started_at, first.finished_at), (at(500), Some(at(2_000))));
    assert_eq!((second.attempt, second.executor_id, second.status), (2, Some(y), AttemptStatus::Success));
    assert_eq!(second.finished_at, Some(at(5_100)));
}

pub(crate) async fn a_cancelled_claim_records_its_attempt(store: &Store) {
    let t = task("cancelled-claim");
    store.insert_task(&t).await.unwrap();
    let x = ExecutorId::new();
    let e = claimed(&t, 1_000, x, 0);
    store.insert_execution(&e).await.unwrap();
    assert!(store.finish_execution(e.id, ExecutionStatus::Cancelled, None, Some("by user"), at(10)).await.unwrap());
    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].executor_id, attempts[0].status), (Some(x), AttemptStatus::Cancelled));
    assert_eq!(attempts[0].error.as_deref(), Some("by user"));
}

pub(crate) async fn heartbeats_settle_the_claims_of_an_earlier_leader(store: &Store) {
    let t = task("unsent");
    store.insert_task(&t).await.unwrap();
    let (x, y) = (ExecutorId::new(), ExecutorId::new());
    let reported = claimed(&t, 1_000, x, 1_000);
    let never_sent = claimed(&t, 2_000, x, 2_000);
    let not_yet_due = claimed(&t, 9_000, x, 9_000);
    let elsewhere = claimed(&t, 3_000, y, 3_000);
    for e in [&reported, &never_sent, &not_yet_due, &elsewhere] {
        store.insert_execution(e).await.unwrap();
    }
    // The leader now in office keeps its own recent claims.
    let own = Some((3, at(0)));
    assert_eq!(store.settle_unsent_claims(x, &[reported.id], at(5_000), own, at(6_000)).await.unwrap(), (0, 0));
    // Its claims older than its own bound are settled like anyone's: a reported one whose mark was lost runs.
    let own = Some((3, at(1_500)));
    assert_eq!(store.settle_unsent_claims(x, &[reported.id], at(5_000), own, at(6_000)).await.unwrap(), (1, 0));
    let settled = store.settle_unsent_claims(x, &[reported.id], at(5_000), Some((99, at(0))), at(6_000)).await;
    assert_eq!(settled.unwrap(), (0, 1));

    let now = store.get_execution(reported.id).await.unwrap().unwrap();
    assert_eq!((now.status, now.attempt, now.executor_id), (ExecutionStatus::Running, 1, Some(x)));
    let now = store.get_execution(never_sent.id).await.unwrap().unwrap();
    assert_eq!((now.status, now.attempt, now.executor_id, now.started_at), (ExecutionStatus::Pending, 0, None, None));
    assert!(store.attempts(never_sent.id).await.unwrap().is_empty(), "it was never sent");
    assert!(store.get_execution(not_yet_due.id).await.unwrap().unwrap().is_preclaimed());
    assert!(store.get_execution(elsewhere.id).await.unwrap().unwrap().is_preclaimed());
    assert_eq!(store.settle_unsent_claims(x, &[], at(5_000), None, at(7_000)).await.unwrap(), (0, 0));
}

pub(crate) async fn the_queue_leaves_a_leaders_recent_claims_to_it(store: &Store) {
    let t = task("own-claims");
    store.insert_task(&t).await.unwrap();
    let x = ExecutorId::new();
    let mut recent = claimed(&t, 1_000, x, 0);
    recent.epoch = Some(7);
    let mut stale = claimed(&t, 2_000, x, -10_000);
    stale.epoch = Some(7);
    let mut earlier_leader = claimed(&t, 3_000, x, 2_000);
    earlier_leader.epoch = Some(6);
    let plain = execution(&t, TriggerType::Manual, at(500));
    for e in [&recent, &stale, &earlier_leader, &plain] {
        store.insert_execution(e).await.unwrap();
    }
    let ids = |candidates: Vec<Execution>| candidates.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = ids(store.pending_candidates(at(5_000), 100, None).await.unwrap());
    assert_eq!(all.len(), 4);
    let own = OwnClaims { epoch: 7, recent_since: at(-5_000), settled_before: at(-60_000) };
    let left = ids(store.pending_candidates(at(5_000), 100, Some(own)).await.unwrap());
    assert!(!left.contains(&recent.id), "a recent claim of this leader is its dispatcher's");
    for e in [&stale, &earlier_leader, &plain] {
        assert!(left.contains(&e.id), "{e:?}");
    }
    let own = OwnClaims { epoch: 7, recent_since: at(-5_000), settled_before: at(-9_000) };
    let left = ids(store.pending_candidates(at(5_000), 100, Some(own)).await.unwrap());
    assert!(!left.contains(&stale.id), "an old claim of this leader is settled by heartbeats, never re-sent");
    assert!(left.contains(&earlier_leader.id));
}

/// An attempt claimed and never sent (the leader's lease lapsed in between) is taken back: rejected, and the
/// execution due again for its next attempt with no retry counted. An attempt no longer running is left alone.
pub(crate) async fn an_unsent_attempt_is_taken_back(store: &Store) {
    let t = task("unsent");
    store.insert_task(&t).await.unwrap();
    let e = execution(&t, TriggerType::Manual, at(0));
    store.insert_execution(&e).await.unwrap();
    let x = ExecutorId::new();
    assert!(store.start_attempt(e.id, 1, x, at(10), at(60_000)).await.unwrap());
    assert!(store.release_unsent(e.id, 1, "not sent", at(20)).await.unwrap());

    let queued = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((queued.status, queued.attempt, queued.retries), (ExecutionStatus::Pending, 1, 0));
    assert_eq!((queued.retry_at, queued.deadline_at), (Some(at(20)), None));
    assert!(!queued.is_preclaimed());
    let attempts = store.attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, attempts[0].error.as_deref()), (AttemptStatus::Rejected, Some("not sent")));

    assert!(!store.release_unsent(e.id, 1, "again", at(21)).await.unwrap(), "no longer running");
    assert!(store.start_attempt(e.id, 2, x, at(30), at(60_000)).await.unwrap(), "the next attempt is claimed");
    assert!(!store.release_unsent(e.id, 1, "stale", at(31)).await.unwrap(), "an earlier attempt is left alone");
}

/// A success reported for an attempt the scheduler counted as unreachable stands: the execution waiting to retry
/// succeeds instead. An attempt that failed otherwise, or a later attempt made meanwhile, keeps the report out.
pub(crate) async fn a_success_after_unreachable_is_accepted(store: &Store) {
    let t = task("late");
    store.insert_task(&t).await.unwrap();
    let (x, _) = store.upsert_executor(&super::executor("workers", "w1", &["late"])).await.unwrap();
    let x = x.id;
    let unreachable =
        "no executor instance took task `late`: w0: busy (HTTP 429); w1: unreachable: http://w1/execute: timed out";
    let result = serde_json::json!({"rows": 3});

    let e = execution(&t, TriggerType::Manual, at(0));
    store.insert_execution(&e).await.unwrap();
    assert!(store.start_attempt(e.id, 1, x, at(10), at(60_000)).await.unwrap());
    assert!(store.retry_later(e.id, 1, AttemptStatus::Failed, unreachable, at(5_000), at(20)).await.unwrap());
    assert!(store.succeed_after_unreachable(e.id, 1, Some(&result), at(30)).await.unwrap());
    let done = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.retry_at, done.result), (ExecutionStatus::Success, None, Some(result.clone())));
    assert_eq!(store.attempts(e.id).await.unwrap()[0].status, AttemptStatus::Success);

    let failed = execution(&t, TriggerType::Manual, at(1));
    store.insert_execution(&failed).await.unwrap();
    assert!(store.start_attempt(failed.id, 1, x, at(10), at(60_000)).await.unwrap());
    assert!(store.retry_later(failed.id, 1, AttemptStatus::Failed, "exit code 3", at(5_000), at(20)).await.unwrap());
    assert!(!store.succeed_after_unreachable(failed.id, 1, None, at(30)).await.unwrap(), "a real failure stands");

    // Another instance offered the execution was unreachable, not this attempt's own.
    let other = execution(&t, TriggerType::Manual, at(3));
    store.insert_execution(&other).await.unwrap();
    assert!(store.start_attempt(other.id, 1, x, at(10), at(60_000)).await.unwrap());
    let elsewhere =
        "no executor instance took task `late`: w0: unreachable: timed out; w1: refused with HTTP 500: boom";
    assert!(store.retry_later(other.id, 1, AttemptStatus::Failed, elsewhere, at(5_000), at(20)).await.unwrap());
    assert!(!store.succeed_after_unreachable(other.id, 1, None, at(30)).await.unwrap(), "w1 itself answered");

    let moved = execution(&t, TriggerType::Manual, at(2));
    store.insert_execution(&moved).await.unwrap();
    assert!(store.start_attempt(moved.id, 1, x, at(10), at(60_000)).await.unwrap());
    assert!(store.retry_later(moved.id, 1, AttemptStatus::Failed, unreachable, at(20), at(20)).await.unwrap());
    assert!(store.start_attempt(moved.id, 2, x, at(25), at(60_000)).await.unwrap());
    assert!(!store.succeed_after_unreachable(moved.id, 1, None, at(30)).await.unwrap(), "a later attempt runs");
}
