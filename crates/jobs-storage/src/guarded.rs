//! Writes that must see a task and its executions together: a manual trigger, a broadcast fire split into its
//! shards, and a task's deletion with the executions it leaves open.
//!
//! All lock the task's row first, so they run one after the other: a trigger either lands before the deletion
//! (which then ends it with the others) or finds the task gone, and no execution outlives its task unended.

use jobs_model::{Execution, ExecutionStatus, TaskId, Timestamp};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::attempts::{IN_FLIGHT, OPEN};
use crate::entity::execution::{self, Entity as Executions};
use crate::entity::execution_attempt::{self, Entity as Attempts};
use crate::entity::task::Entity as Tasks;
use crate::error::conflict_on_unique;
use crate::{Result, Store};

/// What [`Store::delete_task_ending_open`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskDeletion {
    /// No such task.
    NotFound,
    /// The task has this many open executions and `force` was not given: nothing changed.
    Busy(usize),
    /// The task is gone; these executions were open and are now `cancelled` (as they were before, for the caller
    /// to tell their instances).
    Deleted(Vec<Execution>),
}

impl Store {
    /// Stores a manual trigger's execution while its task exists; false (nothing stored) if the task is gone.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, task_id = %execution.task_id))]
    pub async fn insert_trigger(&self, execution: &Execution) -> Result<bool> {
        let txn = self.begin().await?;
        if !lock_task(&txn, execution.task_id).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        let model = crate::executions::to_active(execution, None)?;
        Executions::insert(model).exec_without_returning(&txn).await.map_err(|err| {
            conflict_on_unique(err, || {
                format!("execution {} of task `{}` already exists", execution.id, execution.task_name)
            })
        })?;
        txn.commit().await?;
        Ok(true)
    }

    /// Splits a fire into its broadcast shards: `shards[0]` is the fire's stored execution, now shard 0 of the fire
    /// (its `fire_id`, `shard` and preferred instance in `executor_id` are written), and the others are inserted.
    /// Only while that execution is pending, unsent and not yet split, and its task exists: false (nothing written)
    /// otherwise.
    #[tracing::instrument(skip_all, fields(execution_id = %shards[0].id, shards = shards.len()))]
    pub async fn split_fire(&self, shards: &[Execution]) -> Result<bool> {
        let Some(first) = shards.first() else { return Ok(false) };
        let txn = self.begin().await?;
        if !lock_task(&txn, first.task_id).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        let shard = first.shard.ok_or_else(|| crate::Error::InvalidArgument("a shard without its index".into()))?;
        let updated = Executions::update_many()
            .col_expr(execution::Column::FireId, Expr::value(first.id.to_string()))
            .col_expr(execution::Column::ShardIndex, Expr::value(crate::convert::int(shard.index)))
            .col_expr(execution::Column::ShardTotal, Expr::value(crate::convert::int(shard.total)))
            .col_expr(execution::Column::ExecutorId, Expr::value(first.executor_id.map(|id| id.to_string())))
            .filter(execution::Column::Id.eq(first.id.to_string()))
            .filter(execution::Column::Status.eq(ExecutionStatus::Pending.as_str()))
            .filter(execution::Column::Attempt.eq(0))
            .filter(execution::Column::FireId.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let rest =
            shards[1..].iter().map(|shard| crate::executions::to_active(shard, None)).collect::<Result<Vec<_>>>()?;
        if !rest.is_empty() {
            Executions::insert_many(rest).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes a task and, in the same transaction, ends its open executions as `cancelled` with `reason`;
    /// with open executions and no `force`, refuses and changes nothing. The execution history stays.
    #[tracing::instrument(skip_all, fields(task_id = %id, force))]
    pub async fn delete_task_ending_open(
        &self,
        id: TaskId,
        force: bool,
        reason: &str,
        at: Timestamp,
    ) -> Result<TaskDeletion> {
        let txn = self.begin().await?;
        if !lock_task(&txn, id).await? {
            txn.rollback().await?;
            return Ok(TaskDeletion::NotFound);
        }
        let open: Vec<Execution> = Executions::find()
            .filter(execution::Column::TaskId.eq(id.to_string()))
            .filter(execution::Column::Status.is_in(OPEN))
            .order_by_asc(execution::Column::Id)
            .all(&txn)
            .await?
            .into_iter()
            .map(crate::executions::from_model)
            .collect::<Result<_>>()?;
        if !open.is_empty() && !force {
            txn.rollback().await?;
            return Ok(TaskDeletion::Busy(open.len()));
        }
        if !open.is_empty() {
            cancel_open(&txn, id, reason, at).await?;
        }
        Tasks::delete_by_id(id.to_string()).exec(&txn).await?;
        txn.commit().await?;
        Ok(TaskDeletion::Deleted(open))
    }
}

/// Takes the task's row lock for the rest of the transaction; false if there is no such task.
async fn lock_task(txn: &DatabaseTransaction, id: TaskId) -> Result<bool> {
    // SQLite has no row locks: its transactions here are `IMMEDIATE`, which serialises writers.
    let row: Option<String> = Tasks::find_by_id(id.to_string())
        .select_only()
        .column(crate::entity::task::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .one(txn)
        .await?;
    Ok(row.is_some())
}

async fn cancel_open(txn: &DatabaseTransaction, id: TaskId, reason: &str, at: Timestamp) -> Result<()> {
    let open_ids = Executions::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::TaskId.eq(id.to_string()))
        .filter(execution::Column::Status.is_in(OPEN))
        .into_tuple::<String>()
        .all(txn)
        .await?;
    for chunk in open_ids.chunks(500) {
        Attempts::update_many()
            .col_expr(execution_attempt::Column::Status, Expr::value("cancelled"))
            .col_expr(execution_attempt::Column::FinishedAt, Expr::value(at.as_millis()))
            .col_expr(execution_attempt::Column::Error, Expr::value(reason))
            .filter(execution_attempt::Column::ExecutionId.is_in(chunk.iter().cloned()))
            .filter(execution_attempt::Column::Status.is_in(IN_FLIGHT))
            .exec(txn)
            .await?;
    }
    Executions::update_many()
        .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Cancelled.as_str()))
        .col_expr(execution::Column::Error, Expr::value(reason))
        .col_expr(execution::Column::FinishedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::RetryAt, Expr::value(Option::<i64>::None))
        .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
        .filter(execution::Column::TaskId.eq(id.to_string()))
        .filter(execution::Column::Status.is_in(OPEN))
        .exec(txn)
        .await?;
    Ok(())
}
