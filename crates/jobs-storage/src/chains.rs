//! Task chains: the executions that an execution's end triggers, written in the transaction that ends it, so that
//! a crash between the two can neither lose nor double them.
//!
//! A task names the tasks to trigger when one of its executions ends `success` (`on_success`) or `failed`/`timeout`
//! (`on_failure`). Each triggered execution has trigger type `chain`, the upstream execution's id, and the task's own
//! parameters with the upstream's `result` under `upstream`. A downstream task that is paused or no longer exists is
//! passed over, with a warning in the log.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jobs_model::{Execution, ExecutionId, ExecutionStatus, Parameters, Task, Timestamp, TriggerType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};

use crate::entity::execution::{self, Entity as Executions};
use crate::entity::task::{self, Entity as Tasks};
use crate::tasks::names;
use crate::{Result, Store};

/// An execution that a transaction has just ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended<'a> {
    pub(crate) id: ExecutionId,
    pub(crate) status: ExecutionStatus,
    pub(crate) result: Option<&'a serde_json::Value>,
}

/// How many chained executions were written and not yet taken by [`Store::take_chained`].
#[derive(Debug, Default, Clone)]
pub(crate) struct ChainCount(Arc<AtomicU64>);

impl Store {
    /// The chained executions written since the last call (by any clone of this store): the caller counts them as
    /// fires and tells its queue.
    pub fn take_chained(&self) -> u64 {
        self.chained.0.swap(0, Ordering::Relaxed)
    }

    /// `count` chained executions were committed.
    pub(crate) fn note_chained(&self, count: u64) {
        if count > 0 {
            self.chained.0.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Names in `on_success` or `on_failure` of every task that has a chain, by task name: what a change is checked
    /// against for cycles.
    pub async fn chains(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = Tasks::find()
            .select_only()
            .column(task::Column::Name)
            .column(task::Column::OnSuccess)
            .column(task::Column::OnFailure)
            .filter(
                Condition::any().add(task::Column::OnSuccess.is_not_null()).add(task::Column::OnFailure.is_not_null()),
            )
            .into_tuple()
            .all(self.connection())
            .await?;
        rows.into_iter()
            .map(|(name, on_success, on_failure)| {
                let mut next = names("tasks.on_success", on_success.as_deref())?;
                next.extend(names("tasks.on_failure", on_failure.as_deref())?);
                Ok((name, next))
            })
            .collect()
    }

    /// The executions that `id`'s end triggered, oldest first.
    pub async fn downstream_of(&self, id: ExecutionId) -> Result<Vec<ExecutionId>> {
        let rows: Vec<String> = Executions::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::UpstreamExecutionId.eq(id.to_string()))
            .into_tuple()
            .all(self.connection())
            .await?;
        let mut ids = rows
            .iter()
            .map(|id| crate::convert::id("executions.id", id, ExecutionId::parse))
            .collect::<Result<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }
}

/// Writes, in the transaction `conn` that just ended `ended`, the executions their tasks' chains trigger, and
/// returns how many, for the caller to pass to [`Store::note_chained`] once it commits. Reads nothing when no
/// status in `ended` can trigger a chain, and one joined row set otherwise.
pub(crate) async fn trigger_chains(conn: &impl ConnectionTrait, ended: &[Ended<'_>], at: Timestamp) -> Result<u64> {
    let chaining: Vec<&Ended> = ended.iter().filter(|end| chains_on(end.status)).collect();
    if chaining.is_empty() {
        return Ok(0);
    }
    let upstream: Vec<(String, Option<String>, Option<String>)> = Executions::find()
        .select_only()
        .column(execution::Column::Id)
        .column_as(task::Column::OnSuccess, "on_success")
        .column_as(task::Column::OnFailure, "on_failure")
        .join(JoinType::InnerJoin, execution::Relation::Task.def())
        .filter(execution::Column::Id.is_in(chaining.iter().map(|end| end.id.to_string())))
        .filter(Condition::any().add(task::Column::OnSuccess.is_not_null()).add(task::Column::OnFailure.is_not_null()))
        .into_tuple()
        .all(conn)
        .await?;
    if upstream.is_empty() {
        return Ok(0);
    }
    let mut wanted: Vec<(Ended, Vec<String>)> = Vec::new();
    for (id, on_success, on_failure) in upstream {
        let Some(end) = chaining.iter().find(|end| end.id.to_string() == id) else { continue };
        let next = if end.status == ExecutionStatus::Success {
            names("tasks.on_success", on_success.as_deref())?
        } else {
            names("tasks.on_failure", on_failure.as_deref())?
        };
        if !next.is_empty() {
            wanted.push((**end, next));
        }
    }
    let all_names: BTreeSet<&String> = wanted.iter().flat_map(|(_, next)| next).collect();
    if all_names.is_empty() {
        return Ok(0);
    }
    // Locking the downstream tasks' rows orders this against their deletion, as a manual trigger does.
    let downstream: HashMap<String, Task> = Tasks::find()
        .filter(task::Column::Name.is_in(all_names.into_iter().cloned()))
        .lock_exclusive()
        .all(conn)
        .await?
        .into_iter()
        .map(|row| crate::tasks::from_model(row).map(|task| (task.spec.name.clone(), task)))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (end, next) in &wanted {
        for name in next {
            match downstream.get(name) {
                Some(task) if task.spec.enabled => {
                    rows.push(crate::executions::to_active(&chained(task, end, at), None)?)
                }
                Some(_) => {
                    tracing::warn!(execution_id = %end.id, task = %name, "chained task is paused; not triggered")
                }
                None => {
                    tracing::warn!(execution_id = %end.id, task = %name, "chained task does not exist; not triggered")
                }
            }
        }
    }
    let count = rows.len() as u64;
    if count > 0 {
        Executions::insert_many(rows).exec_without_returning(conn).await?;
    }
    Ok(count)
}

/// Whether an execution ending with `status` may trigger a chain.
fn chains_on(status: ExecutionStatus) -> bool {
    matches!(status, ExecutionStatus::Success | ExecutionStatus::Failed | ExecutionStatus::Timeout)
}

/// The execution of `task` that `end` triggers, due at once.
fn chained(task: &Task, end: &Ended, at: Timestamp) -> Execution {
    let mut upstream = Parameters::new();
    upstream.insert("upstream".to_owned(), end.result.cloned().unwrap_or(serde_json::Value::Null));
    let parameters = jobs_model::merge_parameters(&task.spec.parameters, &upstream);
    let mut execution = Execution::pending(task, TriggerType::Chain, at, parameters, at);
    execution.upstream_execution_id = Some(end.id);
    execution
}
