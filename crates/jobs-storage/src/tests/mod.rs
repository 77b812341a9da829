//! The storage suite: every repository test runs on SQLite, MySQL and PostgreSQL through `storage_suite!`.

mod claims;
mod executions;
mod executors;
mod fires;
mod instances;
mod retention;
mod sessions;
mod stats;
mod tasks;

use jobs_model::{
    Execution, Executor, ExecutorId, ExecutorStatus, Health, Parameters, Task, TaskId, TaskSpec, Timestamp, TriggerType,
};

/// Expands each `group::test` (an `async fn(&Store)` in `crate::tests::group`) into one `#[tokio::test]` per backend.
/// MySQL and PostgreSQL tests get a fresh database each, and skip when the server is unreachable (see `testing`).
macro_rules! storage_suite {
    ($($group:ident::$test:ident),+ $(,)?) => {
        mod sqlite {
            storage_suite!(@backend Sqlite; $($group::$test),+);
        }
        mod mysql {
            storage_suite!(@backend MySql; $($group::$test),+);
        }
        mod postgres {
            storage_suite!(@backend Postgres; $($group::$test),+);
        }
    };
    (@backend $backend:ident; $($group:ident::$test:ident),+) => {
        $(
            #[tokio::test]
            async fn $test() {
                let Some(db) = crate::testing::test_store_for(crate::Backend::$backend).await else {
                    return;
                };
                crate::tests::$group::$test(db.store()).await;
                db.drop().await;
            }
        )+
    };
}

storage_suite!(
    tasks::task_insert_get_update_delete,
    tasks::task_names_are_unique,
    tasks::task_list_filters_and_cursor,
    tasks::schedulable_tasks_and_next_fire,
    tasks::milliseconds_survive,
    fires::record_fires_inserts_and_advances,
    fires::record_fires_moves_tasks_to_different_next_fires_in_one_batch,
    fires::record_fires_ignores_taken_slots,
    fires::record_fires_skips_changed_tasks,
    fires::record_fires_checks_the_epoch,
    fires::record_fires_in_large_batches,
    executions::manual_executions_never_collide,
    executions::list_executions_filters_and_cursor,
    executions::executions_with_status_oldest_first,
    executions::final_status_never_changes,
    executions::attempts_are_recorded,
    executions::batched_changes_apply_like_single_ones,
    claims::a_success_after_unreachable_is_accepted,
    claims::an_unsent_attempt_is_taken_back,
    claims::a_claimed_fire_succeeds_in_one_update,
    claims::an_accepted_mark_makes_a_claim_running,
    claims::a_first_attempt_that_fails_gets_its_row,
    claims::a_cancelled_claim_records_its_attempt,
    claims::heartbeats_settle_the_claims_of_an_earlier_leader,
    claims::the_queue_leaves_a_leaders_recent_claims_to_it,
    executions::retries_timeouts_and_queues,
    executions::pending_candidates_are_fair,
    executions::triggers_and_deletion_see_each_other,
    executions::logs_in_order_and_pages,
    executions::running_counts_by_executor,
    executors::executor_upsert_is_idempotent,
    executors::executor_status_heartbeat_health_delete,
    executors::list_executors_with_tasks,
    executors::an_executor_declares_tens_of_thousands_of_tasks,
    instances::instances_upsert_list_delete,
    instances::bump_epoch_increments,
    sessions::sessions_have_short_lock_waits_and_a_tag,
    sessions::ending_a_deposed_leaders_sessions_frees_its_locks,
    retention::retention_deletes_exactly_what_is_old,
    retention::retention_keeps_the_newest_per_task,
    stats::finished_counts_by_interval,
    stats::next_fires_and_recent_outcomes,
);

/// An instant with milliseconds, which every backend must keep.
pub(crate) const T0: Timestamp = Timestamp::from_millis(1_700_000_000_123);

pub(crate) fn at(offset_millis: i64) -> Timestamp {
    T0.add_millis(offset_millis)
}

pub(crate) fn params(json: serde_json::Value) -> Parameters {
    match json {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// An enabled every-second task, next firing at `T0`.
pub(crate) fn task(name: &str) -> Task {
    let spec = TaskSpec {
        cron_expression: Some("* * * * * *".to_owned()),
        parameters: params(serde_json::json!({"region": "eu", "n": 1})),
        ..TaskSpec::named(name)
    };
    Task { id: TaskId::new(), spec, next_fire_at: Some(T0), created_at: T0, updated_at: T0 }
}

/// A pending execution of `task`.
pub(crate) fn execution(task: &Task, trigger_type: TriggerType, scheduled_at: Timestamp) -> Execution {
    Execution::pending(task, trigger_type, scheduled_at, task.spec.parameters.clone(), scheduled_at)
}

pub(crate) fn executor(name: &str, instance_id: &str, tasks: &[&str]) -> Executor {
    Executor {
        id: ExecutorId::new(),
        name: name.to_owned(),
        instance_id: instance_id.to_owned(),
        base_url: format!("http://{instance_id}:9090"),
        health_check_url: format!("http://{instance_id}:9090/health"),
        weight: 1,
        tags: vec!["blue".to_owned()],
        metadata: params(serde_json::json!({"zone": "a"})),
        status: ExecutorStatus::Active,
        status_reason: None,
        status_changed_by: None,
        status_changed_at: None,
        health: Health::Healthy,
        consecutive_failures: 0,
        consecutive_successes: 0,
        last_heartbeat_at: Some(T0),
        registered_at: T0,
        tasks: tasks.iter().map(|task| (*task).to_owned()).collect(),
        early_delivery_ms: 0,
        max_concurrency: None,
    }
}
