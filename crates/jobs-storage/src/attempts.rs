//! The execution lifecycle: attempts start, change status and end; a final execution status never changes.

use jobs_model::{Attempt, AttemptStatus, ExecutionId, ExecutionStatus, ExecutorId, Timestamp};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::convert::{self, int, uint};
use crate::entity::execution::{self, Entity as Executions};
use crate::entity::execution_attempt::{self, Column, Entity as Attempts};
use crate::{Error, Result, Store};

/// The statuses an execution can still leave.
pub(crate) const OPEN: [&str; 2] = ["pending", "running"];
/// The attempt statuses that are not an outcome yet.
pub(crate) const IN_FLIGHT: [&str; 2] = ["sending", "running"];

impl Store {
    /// Claims attempt `attempt` (the execution's attempt count plus one) for `executor_id`: the execution turns
    /// `running` and the attempt is stored as `sending`.
    ///
    /// False, and nothing written, if the execution is missing, already final, or that attempt was already claimed:
    /// each attempt number is claimed once, so two instances that both believe they lead never send the same one.
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt, executor_id = %executor_id))]
    pub async fn start_attempt(
        &self,
        id: ExecutionId,
        attempt: u32,
        executor_id: ExecutorId,
        at: Timestamp,
        deadline: Timestamp,
    ) -> Result<bool> {
        let txn = self.begin().await?;
        if !claim_in(&txn, id, attempt, executor_id, at, deadline).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Applies `changes` in one transaction, in the order given, so that many writes share one commit; returns
    /// whether each applied, as the single-change methods would.
    ///
    /// Callers sort a batch by execution id so that concurrent batches lock rows in the same order.
    pub async fn apply_changes(&self, changes: &[Change]) -> Result<Vec<bool>> {
        let txn = self.begin().await?;
        let mut applied = Vec::with_capacity(changes.len());
        for change in changes {
            applied.push(match change {
                Change::Claim { id, attempt, executor_id, at, deadline } => {
                    claim_in(&txn, *id, *attempt, *executor_id, *at, *deadline).await?
                }
                Change::Accepted { id, attempt, at } => {
                    attempt_status_in(&txn, *id, *attempt, AttemptStatus::Running, None, *at).await?
                }
                Change::Finish { id, attempt, status, result, error, at } => {
                    finish_in(&txn, *id, Some(*attempt), *status, result.as_ref(), error.as_deref(), *at).await?
                }
            });
        }
        txn.commit().await?;
        Ok(applied)
    }

    /// Sets an attempt's status (and error, if given) while it is in flight; a final status also sets `finished_at`.
    ///
    /// An attempt that already ended keeps its status (a callback may settle it before the dispatcher
    /// records that the instance accepted it): returns whether this call applied.
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt, status = %status))]
    pub async fn set_attempt_status(
        &self,
        id: ExecutionId,
        attempt: u32,
        status: AttemptStatus,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        if attempt_status_in(self.connection(), id, attempt, status, error, at).await? {
            return Ok(true);
        }
        let exists = Attempts::find()
            .filter(Column::ExecutionId.eq(id.to_string()))
            .filter(Column::Attempt.eq(int(attempt)))
            .count(self.connection())
            .await?
            > 0;
        if !exists {
            return Err(Error::NotFound(format!("attempt {attempt} of execution {id} not found")));
        }
        Ok(false)
    }

    /// Ends an execution with a final `status`, unless it already ended: returns whether this call applied.
    /// The current attempt, if still in flight, ends with the matching status.
    #[tracing::instrument(skip_all, fields(execution_id = %id, status = %status))]
    pub async fn finish_execution(
        &self,
        id: ExecutionId,
        status: ExecutionStatus,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        self.finish(id, None, status, result, error, at).await
    }

    /// Like [`Store::finish_execution`], but only while `attempt` is the execution's current attempt:
    /// the outcome of an attempt that was already replaced (timed out and retried) changes nothing.
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt, status = %status))]
    pub async fn finish_attempt(
        &self,
        id: ExecutionId,
        attempt: u32,
        status: ExecutionStatus,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        self.finish(id, Some(attempt), status, result, error, at).await
    }

    /// Ends attempt `attempt` as `attempt_status` and puts the execution back to `pending` until `retry_at`,
    /// counting one more retry; only while the execution is open at that attempt (a pending execution that no
    /// instance took is retried the same way).
    #[tracing::instrument(skip_all, fields(execution_id = %id, attempt))]
    pub async fn retry_later(
        &self,
        id: ExecutionId,
        attempt: u32,
        attempt_status: AttemptStatus,
        error: &str,
        retry_at: Timestamp,
        at: Timestamp,
    ) -> Result<bool> {
        let txn = self.begin().await?;
        let updated = Executions::update_many()
            .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Pending.as_str()))
            .col_expr(execution::Column::Retries, Expr::col(execution::Column::Retries).add(1))
            .col_expr(execution::Column::RetryAt, Expr::value(retry_at.as_millis()))
            .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
            .col_expr(execution::Column::Error, Expr::value(error))
            .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(execution::Column::Id.eq(id.to_string()))
            .filter(execution::Column::Status.is_in(OPEN))
            .filter(execution::Column::Attempt.eq(int(attempt)))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        Attempts::update_many()
            .col_expr(Column::Status, Expr::value(attempt_status.as_str()))
            .col_expr(Column::FinishedAt, Expr::value(at.as_millis()))
            .col_expr(Column::Error, Expr::value(error))
            .filter(Column::ExecutionId.eq(id.to_string()))
            .filter(Column::Attempt.eq(int(attempt)))
            .filter(Column::Status.is_in(IN_FLIGHT))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn finish(
        &self,
        id: ExecutionId,
        attempt: Option<u32>,
        status: ExecutionStatus,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        let txn = self.begin().await?;
        if !finish_in(&txn, id, attempt, status, result, error, at).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Every attempt of an execution, first to last.
    pub async fn attempts(&self, id: ExecutionId) -> Result<Vec<Attempt>> {
        Attempts::find()
            .filter(Column::ExecutionId.eq(id.to_string()))
            .order_by_asc(Column::Attempt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }
}

/// One write of an execution's lifecycle, for [`Store::apply_changes`].
#[derive(Debug, Clone)]
pub enum Change {
    /// [`Store::start_attempt`].
    Claim { id: ExecutionId, attempt: u32, executor_id: ExecutorId, at: Timestamp, deadline: Timestamp },
    /// The instance took attempt `attempt`: `sending` becomes `running` ([`Store::set_attempt_status`]).
    Accepted { id: ExecutionId, attempt: u32, at: Timestamp },
    /// [`Store::finish_attempt`].
    Finish {
        id: ExecutionId,
        attempt: u32,
        status: ExecutionStatus,
        result: Option<serde_json::Value>,
        error: Option<String>,
        at: Timestamp,
    },
}

impl Change {
    pub fn execution_id(&self) -> ExecutionId {
        match self {
            Change::Claim { id, .. } | Change::Accepted { id, .. } | Change::Finish { id, .. } => *id,
        }
    }
}

async fn claim_in(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
    attempt: u32,
    executor_id: ExecutorId,
    at: Timestamp,
    deadline: Timestamp,
) -> Result<bool> {
    let updated = Executions::update_many()
        .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Running.as_str()))
        .col_expr(execution::Column::ExecutorId, Expr::value(executor_id.to_string()))
        .col_expr(execution::Column::Attempt, Expr::value(int(attempt)))
        .col_expr(
            execution::Column::StartedAt,
            Func::coalesce([Expr::col(execution::Column::StartedAt), Expr::value(at.as_millis())]).into(),
        )
        .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::DeadlineAt, Expr::value(deadline.as_millis()))
        .col_expr(execution::Column::RetryAt, Expr::value(Option::<i64>::None))
        .filter(execution::Column::Id.eq(id.to_string()))
        .filter(execution::Column::Status.is_in(OPEN))
        .filter(execution::Column::Attempt.eq(int(attempt.saturating_sub(1))))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    let row = execution_attempt::ActiveModel {
        execution_id: Set(id.to_string()),
        attempt: Set(int(attempt)),
        executor_id: Set(Some(executor_id.to_string())),
        status: Set(AttemptStatus::Sending.as_str().to_owned()),
        started_at: Set(at.as_millis()),
        finished_at: Set(None),
        error: Set(None),
    };
    // The same attempt sent again (its first instance was busy) replaces the earlier row.
    let upsert = OnConflict::columns([Column::ExecutionId, Column::Attempt])
        .update_columns([Column::ExecutorId, Column::Status, Column::StartedAt, Column::FinishedAt, Column::Error])
        .to_owned();
    Attempts::insert(row).on_conflict(upsert).exec_without_returning(conn).await?;
    Ok(true)
}

/// Sets an in-flight attempt's status; false if the attempt is missing or already ended.
async fn attempt_status_in(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
    attempt: u32,
    status: AttemptStatus,
    error: Option<&str>,
    at: Timestamp,
) -> Result<bool> {
    let finished = !matches!(status, AttemptStatus::Sending | AttemptStatus::Running);
    let mut update = Attempts::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::FinishedAt, Expr::value(finished.then_some(at.as_millis())));
    if let Some(error) = error {
        update = update.col_expr(Column::Error, Expr::value(error));
    }
    let result = update
        .filter(Column::ExecutionId.eq(id.to_string()))
        .filter(Column::Attempt.eq(int(attempt)))
        .filter(Column::Status.is_in(IN_FLIGHT))
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Ends an open execution (at `attempt`, if given) and its in-flight attempt; false if it had ended.
async fn finish_in(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
    attempt: Option<u32>,
    status: ExecutionStatus,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
    at: Timestamp,
) -> Result<bool> {
    if !status.is_final() {
        return Err(Error::InvalidArgument(format!("cannot finish execution {id} as `{status}`")));
    }
    let result = convert::opt_to_json("result", result)?;
    let updated = Executions::update_many()
        .col_expr(execution::Column::Status, Expr::value(status.as_str()))
        .col_expr(execution::Column::Result, Expr::value(result))
        .col_expr(execution::Column::Error, Expr::value(error))
        .col_expr(execution::Column::FinishedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::RetryAt, Expr::value(Option::<i64>::None))
        .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
        .filter(execution::Column::Id.eq(id.to_string()))
        .filter(execution::Column::Status.is_in(OPEN));
    let updated = match attempt {
        Some(attempt) => updated.filter(execution::Column::Attempt.eq(int(attempt))),
        None => updated,
    }
    .exec(conn)
    .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    if let Some(attempt_status) = attempt_outcome(status) {
        let current: Option<i32> = match attempt {
            Some(attempt) => Some(int(attempt)),
            None => {
                Executions::find_by_id(id.to_string())
                    .select_only()
                    .column(execution::Column::Attempt)
                    .into_tuple()
                    .one(conn)
                    .await?
            }
        };
        if let Some(attempt) = current {
            let mut update = Attempts::update_many()
                .col_expr(Column::Status, Expr::value(attempt_status.as_str()))
                .col_expr(Column::FinishedAt, Expr::value(at.as_millis()));
            if let Some(error) = error {
                update = update.col_expr(Column::Error, Expr::value(error));
            }
            update
                .filter(Column::ExecutionId.eq(id.to_string()))
                .filter(Column::Attempt.eq(attempt))
                .filter(Column::Status.is_in(IN_FLIGHT))
                .exec(conn)
                .await?;
        }
    }
    Ok(true)
}

/// How an attempt ends when its execution ends with `status`; `None` for statuses no attempt produced.
fn attempt_outcome(status: ExecutionStatus) -> Option<AttemptStatus> {
    match status {
        ExecutionStatus::Success => Some(AttemptStatus::Success),
        ExecutionStatus::Failed => Some(AttemptStatus::Failed),
        ExecutionStatus::Timeout => Some(AttemptStatus::Timeout),
        ExecutionStatus::Cancelled => Some(AttemptStatus::Cancelled),
        ExecutionStatus::Pending | ExecutionStatus::Running | ExecutionStatus::Skipped | ExecutionStatus::Missed => {
            None
        }
    }
}

fn from_model(model: execution_attempt::Model) -> Result<Attempt> {
    Ok(Attempt {
        attempt: uint("execution_attempts.attempt", model.attempt)?,
        executor_id: convert::opt_id(
            "execution_attempts.executor_id",
            model.executor_id.as_deref(),
            ExecutorId::parse,
        )?,
        status: convert::word("execution_attempts.status", &model.status)?,
        started_at: Timestamp::from_millis(model.started_at),
        finished_at: model.finished_at.map(Timestamp::from_millis),
        error: model.error,
    })
}
