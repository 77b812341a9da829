//! Tasks: CRUD, unique names, listing with a cursor, the planner's view, millisecond precision.

use jobs_model::{BackoffKind, ErrorKind, ExecutionMode, MisfirePolicy, RetryBackoff, TaskId, Timestamp, TriggerType};

use crate::tests::{T0, at, execution, params, task};
use crate::{Error, Store, TaskFilter};

pub(crate) async fn task_insert_get_update_delete(store: &Store) {
    let mut stored = task("daily_report");
    stored.spec.description = "nightly numbers".to_owned();
    stored.spec.retry_backoff =
        Some(RetryBackoff { kind: BackoffKind::Exponential, delay_seconds: 5, max_delay_seconds: Some(60) });
    stored.spec.executor = Some("data-processor".to_owned());
    store.insert_task(&stored).await.unwrap();

    assert_eq!(store.get_task(stored.id).await.unwrap(), Some(stored.clone()));
    assert_eq!(store.find_task_by_name("daily_report").await.unwrap(), Some(stored.clone()));
    assert_eq!(store.find_task_by_name("nightly").await.unwrap(), None);
    assert_eq!(store.get_task(TaskId::new()).await.unwrap(), None);

    let mut updated = stored.clone();
    updated.spec.name = "daily_report_v2".to_owned();
    updated.spec.cron_expression = None;
    updated.spec.execution_mode = ExecutionMode::Sequential;
    updated.spec.misfire_policy = MisfirePolicy::Skip;
    updated.spec.max_retry = 3;
    updated.spec.timeout_seconds = 60;
    updated.spec.parameters = params(serde_json::json!({"nested": {"list": [1, 2.5, "x", null]}}));
    updated.spec.executor = None;
    updated.spec.enabled = false;
    updated.next_fire_at = None;
    updated.updated_at = at(5_000);
    // `created_at` is not the caller's to change.
    updated.created_at = at(1);
    store.update_task(&updated).await.unwrap();
    let read = store.get_task(stored.id).await.unwrap().unwrap();
    assert_eq!(read.spec, updated.spec);
    assert_eq!((read.next_fire_at, read.created_at, read.updated_at), (None, T0, at(5_000)));

    let missing = task("ghost");
    let err = store.update_task(&missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    assert!(store.delete_task(stored.id).await.unwrap());
    assert!(!store.delete_task(stored.id).await.unwrap());
    assert_eq!(store.get_task(stored.id).await.unwrap(), None);
}

pub(crate) async fn task_names_are_unique(store: &Store) {
    let first = task("report");
    store.insert_task(&first).await.unwrap();
    let err = store.insert_task(&task("report")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.to_string(), "task `report` already exists");

    // Names compare exactly on every backend.
    store.insert_task(&task("Report")).await.unwrap();

    let mut second = task("other");
    store.insert_task(&second).await.unwrap();
    second.spec.name = "report".to_owned();
    let err = store.update_task(&second).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
}

pub(crate) async fn task_list_filters_and_cursor(store: &Store) {
    let mut tasks = Vec::new();
    for name in ["alpha", "beta_1", "beta_2", "gamma", "BETAX"] {
        let mut t = task(name);
        t.spec.enabled = name != "beta_2";
        store.insert_task(&t).await.unwrap();
        tasks.push(t);
    }
    tasks.sort_by_key(|t| t.id);
    let names = |list: Vec<jobs_model::Task>| list.into_iter().map(|t| t.spec.name).collect::<Vec<_>>();

    let all = store.list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(all, tasks);

    let page1 = store.list_tasks(&TaskFilter { limit: 2, ..TaskFilter::default() }).await.unwrap();
    let page2 =
        store.list_tasks(&TaskFilter { limit: 2, after: Some(page1[1].id), ..TaskFilter::default() }).await.unwrap();
    let page3 =
        store.list_tasks(&TaskFilter { limit: 2, after: Some(page2[1].id), ..TaskFilter::default() }).await.unwrap();
    assert_eq!([page1, page2, page3].concat(), tasks);

    let beta = store.list_tasks(&TaskFilter { name_contains: Some("Beta".to_owned()), ..TaskFilter::default() }).await;
    assert_eq!(names(beta.unwrap()), ["beta_1", "beta_2", "BETAX"]);
    // `_` is a character, not a wildcard.
    let underscore =
        store.list_tasks(&TaskFilter { name_contains: Some("a_".to_owned()), ..TaskFilter::default() }).await;
    assert_eq!(names(underscore.unwrap()), ["beta_1", "beta_2"]);
    let percent = store.list_tasks(&TaskFilter { name_contains: Some("%".to_owned()), ..TaskFilter::default() }).await;
    assert!(percent.unwrap().is_empty());

    let disabled = store.list_tasks(&TaskFilter { enabled: Some(false), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(names(disabled), ["beta_2"]);
}

pub(crate) async fn schedulable_tasks_and_next_fire(store: &Store) {
    let scheduled = task("scheduled");
    let mut paused = task("paused");
    paused.spec.enabled = false;
    let mut unscheduled = task("unscheduled");
    unscheduled.spec.cron_expression = None;
    for t in [&scheduled, &paused, &unscheduled] {
        store.insert_task(t).await.unwrap();
    }
    assert_eq!(store.schedulable_tasks().await.unwrap(), std::slice::from_ref(&scheduled));
    let first = store.schedulable_tasks_after(None, 1).await.unwrap();
    assert_eq!(first, std::slice::from_ref(&scheduled));
    assert!(store.schedulable_tasks_after(Some(scheduled.id), 1).await.unwrap().is_empty());
    let versions = store.task_versions_since(Timestamp::from_millis(0)).await.unwrap();
    assert!(versions.contains(&(scheduled.id, scheduled.updated_at)), "{versions:?}");
    let later = scheduled.updated_at.add_millis(1);
    assert!(!store.task_versions_since(later).await.unwrap().iter().any(|(id, _)| *id == scheduled.id));
    let mut some = store.get_tasks(&[scheduled.id, TaskId::new()]).await.unwrap();
    some.sort_by_key(|task| task.id);
    assert_eq!(some, std::slice::from_ref(&scheduled));

    store.set_next_fire(scheduled.id, Some(at(60_000))).await.unwrap();
    assert_eq!(store.get_task(scheduled.id).await.unwrap().unwrap().next_fire_at, Some(at(60_000)));
    store.set_next_fire(scheduled.id, None).await.unwrap();
    assert_eq!(store.get_task(scheduled.id).await.unwrap().unwrap().next_fire_at, None);
    let err = store.set_next_fire(TaskId::new(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub(crate) async fn milliseconds_survive(store: &Store) {
    let mut t = task("precise");
    t.next_fire_at = Some(Timestamp::from_millis(1_700_000_000_123));
    t.created_at = Timestamp::from_millis(1_700_000_000_001);
    t.updated_at = Timestamp::from_millis(1_700_000_000_999);
    store.insert_task(&t).await.unwrap();
    let read = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(read.next_fire_at.unwrap().as_millis(), 1_700_000_000_123);
    assert_eq!(read.created_at.as_millis(), 1_700_000_000_001);
    assert_eq!(read.updated_at.as_millis(), 1_700_000_000_999);

    let manual = execution(&t, TriggerType::Manual, Timestamp::from_millis(1_700_000_000_123));
    store.insert_execution(&manual).await.unwrap();
    let read = store.get_execution(manual.id).await.unwrap().unwrap();
    assert_eq!(read.scheduled_at.as_millis(), 1_700_000_000_123);
    assert_eq!(read, manual);
}
