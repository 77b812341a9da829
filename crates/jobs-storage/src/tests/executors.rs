//! Executors: idempotent registration, operator status, heartbeats, health, listing and removal.

use jobs_model::{ErrorKind, ExecutorId, ExecutorStatus, Health};

use crate::tests::{T0, at, executor, params};
use crate::{ExecutorFilter, Store};

pub(crate) async fn executor_upsert_is_idempotent(store: &Store) {
    let first = executor("data-processor", "executor-001", &["daily_report", "cleanup", "daily_report"]);
    let (stored, created) = store.upsert_executor(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.tasks, ["cleanup", "daily_report"]);
    assert_eq!(stored.metadata, first.metadata);
    assert_eq!(stored.tags, first.tags);

    assert!(
        store
            .set_executor_status(first.id, ExecutorStatus::Maintenance, Some("upgrade"), Some("ops"), at(5))
            .await
            .unwrap()
    );
    store.record_health(first.id, Health::Unhealthy, 3, 0).await.unwrap();

    // The same instance registers again (a restart) with a new id, address and task list.
    let mut again = executor("data-processor", "executor-001", &["export"]);
    again.base_url = "http://10.0.0.7:9090".to_owned();
    again.weight = 5;
    again.tags = vec![];
    again.metadata = params(serde_json::json!({"version": "2"}));
    again.registered_at = at(60_000);
    again.last_heartbeat_at = Some(at(60_000));
    let (stored, created) = store.upsert_executor(&again).await.unwrap();
    assert!(!created);
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.registered_at, T0);
    assert_eq!(stored.tasks, ["export"]);
    assert_eq!((stored.base_url.as_str(), stored.weight), ("http://10.0.0.7:9090", 5));
    assert!(stored.tags.is_empty());
    assert_eq!(stored.metadata, again.metadata);
    assert_eq!(stored.status, ExecutorStatus::Maintenance);
    assert_eq!((stored.status_reason.as_deref(), stored.status_changed_by.as_deref()), (Some("upgrade"), Some("ops")));
    assert_eq!(stored.status_changed_at, Some(at(5)));
    assert_eq!((stored.health, stored.consecutive_failures, stored.consecutive_successes), (Health::Healthy, 0, 0));
    assert_eq!(stored.last_heartbeat_at, Some(at(60_000)));
    assert_eq!(store.get_executor(first.id).await.unwrap(), Some(stored));

    // Another instance of the group is another executor.
    let (other, created) = store.upsert_executor(&executor("data-processor", "executor-002", &[])).await.unwrap();
    assert!(created);
    assert_ne!(other.id, first.id);
    assert!(other.tasks.is_empty());
}

pub(crate) async fn executor_status_heartbeat_health_delete(store: &Store) {
    let e = executor("svc", "i1", &["t"]);
    store.upsert_executor(&e).await.unwrap();
    let unknown = ExecutorId::new();

    assert!(store.record_heartbeat(e.id, at(1_000)).await.unwrap());
    assert!(!store.record_heartbeat(unknown, at(1_000)).await.unwrap());
    assert_eq!(store.get_executor(e.id).await.unwrap().unwrap().last_heartbeat_at, Some(at(1_000)));

    store.record_health(e.id, Health::Unhealthy, 3, 0).await.unwrap();
    let read = store.get_executor(e.id).await.unwrap().unwrap();
    assert_eq!((read.health, read.consecutive_failures, read.consecutive_successes), (Health::Unhealthy, 3, 0));
    let err = store.record_health(unknown, Health::Healthy, 0, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    assert!(store.set_executor_status(e.id, ExecutorStatus::Maintenance, None, None, at(2_000)).await.unwrap());
    assert!(store.set_executor_status(e.id, ExecutorStatus::Active, Some("done"), None, at(3_000)).await.unwrap());
    assert!(!store.set_executor_status(unknown, ExecutorStatus::Active, None, None, at(3_000)).await.unwrap());
    let read = store.get_executor(e.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.status_reason.as_deref(), read.status_changed_at),
        (ExecutorStatus::Active, Some("done"), Some(at(3_000)))
    );

    assert!(store.delete_executor(e.id).await.unwrap());
    assert!(!store.delete_executor(e.id).await.unwrap());
    assert_eq!(store.get_executor(e.id).await.unwrap(), None);
    // Its declared tasks went with it: registering again starts from nothing.
    let (fresh, created) = store.upsert_executor(&executor("svc", "i1", &[])).await.unwrap();
    assert!(created);
    assert!(fresh.tasks.is_empty());
}

pub(crate) async fn list_executors_with_tasks(store: &Store) {
    let a1 = executor("a", "1", &["x", "y"]);
    let a2 = executor("a", "2", &["y"]);
    let b1 = executor("b", "1", &[]);
    for e in [&b1, &a2, &a1] {
        store.upsert_executor(e).await.unwrap();
    }
    store.set_executor_status(a2.id, ExecutorStatus::Maintenance, None, None, at(1)).await.unwrap();

    let all = store.list_executors(&ExecutorFilter::default()).await.unwrap();
    let summary: Vec<_> = all.iter().map(|e| (e.name.as_str(), e.instance_id.as_str(), e.tasks.clone())).collect();
    assert_eq!(
        summary,
        [("a", "1", vec!["x".to_owned(), "y".to_owned()]), ("a", "2", vec!["y".to_owned()]), ("b", "1", vec![])]
    );
    let group_a = store.list_executors(&ExecutorFilter { name: Some("a".to_owned()), status: None }).await.unwrap();
    assert_eq!(group_a.iter().map(|e| e.id).collect::<Vec<_>>(), [a1.id, a2.id]);
    assert_eq!(group_a[0].tasks, ["x", "y"]);
    let active = store
        .list_executors(&ExecutorFilter { name: Some("a".to_owned()), status: Some(ExecutorStatus::Active) })
        .await
        .unwrap();
    assert_eq!(active.iter().map(|e| e.id).collect::<Vec<_>>(), [a1.id]);
    assert!(
        store.list_executors(&ExecutorFilter { name: Some("c".to_owned()), status: None }).await.unwrap().is_empty()
    );
}

/// An instance declaring more tasks than one statement has placeholders for (65,535; SQLite 32,766).
pub(crate) async fn an_executor_declares_tens_of_thousands_of_tasks(store: &Store) {
    let names: Vec<String> = (0..40_000).map(|n| format!("task-{n:05}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (stored, created) = store.upsert_executor(&executor("many", "many-1", &names)).await.unwrap();
    assert!(created);
    assert_eq!(stored.tasks.len(), 40_000);
}
