//! The `retention` section and one pass on a real (SQLite) store.

use jobs_model::{Duration, Execution, ExecutionId, ExecutionStatus, TaskId, Timestamp, TriggerType};
use jobs_storage::{ExecutionFilter, Store};

use crate::RetentionConfig;
use crate::retention::{Deleted, pass};

#[track_caller]
fn check(json: serde_json::Value, expected: Result<(u64, u64), &str>) {
    let parsed = serde_json::from_value::<RetentionConfig>(json).map_err(|error| error.to_string());
    let got = parsed.and_then(|config| {
        config.validate()?;
        Ok((config.max_age.get().as_secs(), config.max_per_task))
    });
    match (got, expected) {
        (Ok(got), Ok(expected)) => assert_eq!(got, expected),
        (Err(error), Err(expected)) => assert!(error.contains(expected), "`{error}` should mention `{expected}`"),
        (got, expected) => panic!("got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn config_defaults_and_limits() {
    let defaults = RetentionConfig::default();
    assert_eq!(defaults.max_age.get().as_secs(), 30 * 86_400);
    assert_eq!((defaults.max_per_task, defaults.interval.get().as_secs(), defaults.batch_size), (0, 60, 500));
    check(serde_json::json!({}), Ok((30 * 86_400, 0)));
    check(serde_json::json!({"max_age": "7d", "max_per_task": 100}), Ok((7 * 86_400, 100)));
    check(serde_json::json!({"max_age": "0s"}), Ok((0, 0)));
    check(serde_json::json!({"batch_size": 10_000}), Ok((30 * 86_400, 0)));
    check(serde_json::json!({"batch_size": 0}), Err("retention.batch_size"));
    check(serde_json::json!({"batch_size": 10_001}), Err("retention.batch_size"));
    check(serde_json::json!({"interval": "0s"}), Err("retention.interval"));
    check(serde_json::json!({"max_age": "a month"}), Err("a month"));
    check(serde_json::json!({"max_count": 3}), Err("max_count"));
}

const HOUR: i64 = 3_600_000;

/// A final execution of `task_id` that ended at `finished` (`None`: still pending).
fn execution(task_id: TaskId, created: Timestamp, finished: Option<Timestamp>) -> Execution {
    Execution {
        id: ExecutionId::new(),
        task_id,
        task_name: "kept".to_owned(),
        trigger_type: TriggerType::Manual,
        status: if finished.is_some() { ExecutionStatus::Success } else { ExecutionStatus::Pending },
        scheduled_at: created,
        parameters: Default::default(),
        executor_id: None,
        attempt: 0,
        retries: 0,
        retry_at: None,
        deadline_at: None,
        created_at: created,
        started_at: None,
        finished_at: finished,
        result: None,
        error: None,
        missed_slots: 0,
        upstream_execution_id: None,
        fire_id: None,
        shard: None,
        epoch: None,
    }
}

async fn remaining(store: &Store) -> Vec<ExecutionId> {
    let mut ids: Vec<_> =
        store.list_executions(&ExecutionFilter::default()).await.unwrap().into_iter().map(|e| e.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_pass_deletes_by_age_then_by_count() {
    let store = jobs_storage::testing::test_store().await;
    let now = Timestamp::from_millis(1_800_000_000_000);
    let (a, b) = (TaskId::new(), TaskId::new());
    let old = now.add_millis(-2 * HOUR);
    let recent = now.add_millis(-HOUR / 60);
    // In creation order: three old, one old but pending, three recent of `a`, and one old of `b`.
    let of_a: Vec<Execution> = [Some(old), Some(old), Some(old), None, Some(recent), Some(recent), Some(recent)]
        .into_iter()
        .map(|finished| execution(a, old, finished))
        .collect();
    let of_b = execution(b, old, Some(old));
    for e in of_a.iter().chain([&of_b]) {
        store.insert_execution(e).await.unwrap();
        store.append_logs(e.id, &["a line".to_owned()], e.created_at).await.unwrap();
    }

    let off = RetentionConfig { max_age: Duration::from_secs(0), ..RetentionConfig::default() };
    assert!(!off.deletes_anything());
    assert_eq!(pass(&store, &off, now).await, Deleted::default());
    assert_eq!(remaining(&store).await.len(), 8);

    let config = RetentionConfig {
        max_age: Duration::from_secs(3_600),
        max_per_task: 2,
        batch_size: 2,
        ..RetentionConfig::default()
    };
    config.validate().unwrap();
    assert_eq!(pass(&store, &config, now).await, Deleted { by_age: 4, by_count: 1 });
    let mut kept = vec![of_a[3].id, of_a[5].id, of_a[6].id];
    kept.sort();
    assert_eq!(remaining(&store).await, kept);
    assert!(store.logs(of_a[4].id, None, 0).await.unwrap().is_empty());
    assert_eq!(pass(&store, &config, now).await, Deleted::default(), "nothing left to delete");
}
