//! The execution lifecycle: attempts start, change status and end; a final execution status never changes.
//!
//! The first attempt has no row of its own while it is in flight or once it succeeded: the execution row holds its
//! instance and times, so that a fire that runs once costs its insert and one update. Its row is written when it
//! ends otherwise (refused, failed, timed out, cancelled), before the execution moves on; [`Store::attempts`] shows
//! it from the execution row until then.

use jobs_model::{Attempt, AttemptStatus, ExecutionId, ExecutionStatus, ExecutorId, Timestamp};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::chains::{Ended, trigger_chains};
use crate::convert::{self, int, uint};
use crate::entity::execution::{self, Entity as Executions};
use crate::entity::execution_attempt::{self, Column, Entity as Attempts};
use crate::logs::insert_logs_in;
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
    ///
    /// The "accepted" marks of first attempts share one statement, written after the other changes; a mark whose
    /// execution has moved on changes nothing and still counts as applied. Batches of marks alone lock their rows in
    /// id order like sorted batches of other changes, so the writer keeps the two apart.
    pub async fn apply_changes(&self, changes: &[Change]) -> Result<Vec<bool>> {
        let txn = self.begin().await?;
        let mut applied = Vec::with_capacity(changes.len());
        let mut taken = Vec::new();
        let mut taken_at = None;
        let mut ended = Vec::new();
        let mut ended_at = Timestamp::from_millis(0);
        let mut lines: Vec<(ExecutionId, &[String], Timestamp)> = Vec::new();
        for change in changes {
            applied.push(match change {
                Change::Claim { id, attempt, executor_id, at, deadline } => {
                    claim_in(&txn, *id, *attempt, *executor_id, *at, *deadline).await?
                }
                Change::Accepted { id, attempt: 1, at } => {
                    taken.push(id.to_string());
                    taken_at = Ord::max(taken_at, Some(*at));
                    true
                }
                Change::Accepted { id, attempt, at } => {
                    attempt_status_in(&txn, *id, *attempt, AttemptStatus::Running, None, *at).await?
                }
                Change::Finish { id, attempt, status, result, error, logs, at } => {
                    let ending = Ending { id: *id, attempt: Some(*attempt), status: *status, at: *at };
                    let finished = finish_in(&txn, ending, result.as_ref(), error.as_deref(), true).await?;
                    if finished {
                        ended.push(Ended { id: *id, status: *status, result: result.as_ref() });
                        ended_at = Ord::max(ended_at, *at);
                        if !logs.is_empty() {
                            lines.push((*id, logs.as_slice(), *at));
                        }
                    }
                    finished
                }
            });
        }
        insert_logs_in(&txn, &lines).await?;
        let chained = trigger_chains(&txn, &ended, ended_at).await?;
        if let Some(at) = taken_at {
            for chunk in taken.chunks(500) {
                Executions::update_many()
                    .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Running.as_str()))
                    .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
                    .filter(execution::Column::Id.is_in(chunk.iter().cloned()))
                    .filter(preclaimed())
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        self.note_chained(chained);
        Ok(applied)
    }

    /// Settles the first attempts claimed for `executor_id` that went out before `sent_before` and are still not
    /// marked as taken (their leader was replaced before it could tell): those the instance reports in `running`
    /// are marked running; the others never reached it and become plain pending executions again, for the queue to
    /// send. Returns how many were marked and how many were put back.
    ///
    /// The claims of the leader now in office (`current = (epoch, sent_before)`) are settled only once sent before
    /// their own, older bound: until then its dispatcher sent them (an instance slow to answer has not reported them
    /// yet) or still decides what becomes of them; past it, they are a send whose "accepted" mark was lost.
    #[tracing::instrument(skip_all, fields(executor_id = %executor_id))]
    pub async fn settle_unsent_claims(
        &self,
        executor_id: ExecutorId,
        running: &[ExecutionId],
        sent_before: Timestamp,
        current: Option<(i64, Timestamp)>,
        at: Timestamp,
    ) -> Result<(u64, u64)> {
        let claims = || {
            let mut claims = Condition::all()
                .add(preclaimed())
                .add(execution::Column::ExecutorId.eq(executor_id.to_string()))
                .add(execution::Column::StartedAt.lt(sent_before.as_millis()));
            if let Some((epoch, own_sent_before)) = current {
                claims = claims.add(
                    Condition::any()
                        .add(execution::Column::Epoch.is_null())
                        .add(execution::Column::Epoch.ne(epoch))
                        .add(execution::Column::StartedAt.lt(own_sent_before.as_millis())),
                );
            }
            claims
        };
        let running: Vec<String> = running.iter().map(ToString::to_string).collect();
        // Read committed: these range updates run beside the planner's inserts of new claims for the same instance,
        // and at repeatable read their gap locks could deadlock with them.
        let txn = self.begin_read_committed().await?;
        let mut marked = 0;
        for chunk in running.chunks(500) {
            marked += Executions::update_many()
                .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Running.as_str()))
                .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
                .filter(claims())
                .filter(execution::Column::Id.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?
                .rows_affected;
        }
        // The reported ones are running now, so the claims left are the ones the instance never got.
        let reset = Executions::update_many()
            .col_expr(execution::Column::Attempt, Expr::value(0))
            .col_expr(execution::Column::ExecutorId, Expr::value(Option::<String>::None))
            .col_expr(execution::Column::StartedAt, Expr::value(Option::<i64>::None))
            .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
            .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(claims())
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok((marked, reset))
    }

    /// Accepts a success reported for attempt `attempt` after the scheduler counted that attempt's instance
    /// unreachable (its answer came too late, or not at all, yet the work ran): the attempt and the execution become
    /// `success`, whether the execution had failed or was waiting to retry. Only while no later attempt was made.
    pub async fn succeed_after_unreachable(
        &self,
        id: ExecutionId,
        attempt: u32,
        result: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<bool> {
        let txn = self.begin().await?;
        let failed = Attempts::find()
            .filter(Column::ExecutionId.eq(id.to_string()))
            .filter(Column::Attempt.eq(int(attempt)))
            .filter(Column::Status.eq(AttemptStatus::Failed.as_str()))
            .one(&txn)
            .await?;
        // The attempt's own instance must be the one found unreachable: the error lists every instance offered the
        // execution, each as `{instance}: {reason}`.
        let instance = match failed.as_ref().and_then(|row| row.executor_id.clone()) {
            Some(executor_id) => {
                crate::entity::executor::Entity::find_by_id(executor_id).one(&txn).await?.map(|row| row.instance_id)
            }
            None => None,
        };
        let unreachable = match (failed.and_then(|row| row.error), instance) {
            (Some(error), Some(instance)) => error.contains(&format!("{instance}: unreachable:")),
            _ => false,
        };
        if !unreachable {
            txn.rollback().await?;
            return Ok(false);
        }
        let retrying = Condition::all()
            .add(execution::Column::Status.eq(ExecutionStatus::Pending.as_str()))
            .add(execution::Column::RetryAt.is_not_null());
        let updated = Executions::update_many()
            .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Success.as_str()))
            .col_expr(execution::Column::Result, Expr::value(convert::opt_to_json("result", result)?))
            .col_expr(execution::Column::Error, Expr::value(Option::<String>::None))
            .col_expr(execution::Column::RetryAt, Expr::value(Option::<i64>::None))
            .col_expr(execution::Column::FinishedAt, Expr::value(at.as_millis()))
            .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(execution::Column::Id.eq(id.to_string()))
            .filter(execution::Column::Attempt.eq(int(attempt)))
            .filter(Condition::any().add(execution::Column::Status.eq(ExecutionStatus::Failed.as_str())).add(retrying))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        Attempts::update_many()
            .col_expr(Column::Status, Expr::value(AttemptStatus::Success.as_str()))
            .col_expr(Column::FinishedAt, Expr::value(at.as_millis()))
            .filter(Column::ExecutionId.eq(id.to_string()))
            .filter(Column::Attempt.eq(int(attempt)))
            .exec(&txn)
            .await?;
        let chained = trigger_chains(&txn, &[Ended { id, status: ExecutionStatus::Success, result }], at).await?;
        txn.commit().await?;
        self.note_chained(chained);
        Ok(true)
    }

    /// Takes back attempt `attempt` of a running execution that this scheduler claimed and knows it never sent (its
    /// lease lapsed between the claim and the request): the attempt ends `rejected` with `reason`, and the
    /// execution goes back to the queue, due now, for its next attempt. Not an end and not a retry: no retry is
    /// counted. False if the execution is no longer running that attempt.
    pub async fn release_unsent(&self, id: ExecutionId, attempt: u32, reason: &str, at: Timestamp) -> Result<bool> {
        let txn = self.begin().await?;
        let updated = Executions::update_many()
            .col_expr(execution::Column::Status, Expr::value(ExecutionStatus::Pending.as_str()))
            .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
            .col_expr(execution::Column::RetryAt, Expr::value(at.as_millis()))
            .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(execution::Column::Id.eq(id.to_string()))
            .filter(execution::Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(execution::Column::Attempt.eq(int(attempt)))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        end_attempt_in(&txn, id, attempt, AttemptStatus::Rejected, Some(reason), at).await?;
        txn.commit().await?;
        Ok(true)
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
        let in_flight = matches!(status, AttemptStatus::Sending | AttemptStatus::Running);
        let txn = self.begin().await?;
        let applied = if in_flight {
            attempt_status_in(&txn, id, attempt, status, error, at).await?
        } else {
            end_attempt_in(&txn, id, attempt, status, error, at).await?
        };
        txn.commit().await?;
        if applied {
            return Ok(true);
        }
        let exists = Attempts::find()
            .filter(Column::ExecutionId.eq(id.to_string()))
            .filter(Column::Attempt.eq(int(attempt)))
            .count(self.connection())
            .await?
            > 0;
        if exists {
            return Ok(false);
        }
        if attempt == 1 && in_flight {
            // A first attempt in flight lives on its execution row: nothing to change while it is open there.
            let open = Executions::find_by_id(id.to_string())
                .filter(execution::Column::Attempt.eq(1))
                .filter(execution::Column::Status.is_in(OPEN))
                .count(self.connection())
                .await?;
            if open > 0 {
                return Ok(true);
            }
        }
        Err(Error::NotFound(format!("attempt {attempt} of execution {id} not found")))
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
        end_attempt_in(&txn, id, attempt, attempt_status, Some(error), at).await?;
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
        if !finish_in(&txn, Ending { id, attempt, status, at }, result, error, false).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        let chained = trigger_chains(&txn, &[Ended { id, status, result }], at).await?;
        txn.commit().await?;
        self.note_chained(chained);
        Ok(true)
    }

    /// Every attempt of an execution, first to last; a first attempt without a row of its own is shown from the
    /// execution row.
    pub async fn attempts(&self, id: ExecutionId) -> Result<Vec<Attempt>> {
        let mut attempts: Vec<Attempt> = Attempts::find()
            .filter(Column::ExecutionId.eq(id.to_string()))
            .order_by_asc(Column::Attempt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(from_model)
            .collect::<Result<_>>()?;
        if attempts.first().is_some_and(|first| first.attempt == 1) {
            return Ok(attempts);
        }
        let Some(execution) = Executions::find_by_id(id.to_string()).one(self.connection()).await? else {
            return Ok(attempts);
        };
        if let Some(first) = first_attempt(&crate::executions::from_model(execution)?) {
            attempts.insert(0, first);
        }
        Ok(attempts)
    }
}

/// One write of an execution's lifecycle, for [`Store::apply_changes`].
#[derive(Debug, Clone)]
pub enum Change {
    /// [`Store::start_attempt`].
    Claim { id: ExecutionId, attempt: u32, executor_id: ExecutorId, at: Timestamp, deadline: Timestamp },
    /// The instance took attempt `attempt`: `sending` becomes `running` ([`Store::set_attempt_status`]).
    Accepted { id: ExecutionId, attempt: u32, at: Timestamp },
    /// [`Store::finish_attempt`], with the log lines the instance reported with its end, written in the same
    /// transaction when the end applies (so a reader never sees the end without them).
    Finish {
        id: ExecutionId,
        attempt: u32,
        status: ExecutionStatus,
        result: Option<serde_json::Value>,
        error: Option<String>,
        logs: Vec<String>,
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
    if attempt == 1 {
        // The execution row is the first attempt's record while it is in flight.
        return Ok(true);
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

/// Which execution ends, how and when.
struct Ending {
    id: ExecutionId,
    /// Only while the execution is at this attempt.
    attempt: Option<u32>,
    status: ExecutionStatus,
    at: Timestamp,
}

/// The executions whose first attempt is claimed and not yet marked as taken: see [`jobs_model::Execution::is_preclaimed`].
fn preclaimed() -> Condition {
    Condition::all()
        .add(execution::Column::Status.eq(ExecutionStatus::Pending.as_str()))
        .add(execution::Column::Attempt.eq(1))
        .add(execution::Column::RetryAt.is_null())
}

/// Ends an open execution (at `attempt`, if given) and its in-flight attempt; false if it had ended.
///
/// With `reported`, the end is an instance's report on an attempt it took: it applies while that attempt runs, or
/// is claimed and not yet marked as taken, never to an execution waiting for its retry. A successful first attempt
/// costs this one statement.
async fn finish_in(
    conn: &impl ConnectionTrait,
    ending: Ending,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
    reported: bool,
) -> Result<bool> {
    let Ending { id, attempt, status, at } = ending;
    if !status.is_final() {
        return Err(Error::InvalidArgument(format!("cannot finish execution {id} as `{status}`")));
    }
    let result = convert::opt_to_json("result", result)?;
    let open = if reported {
        Condition::any().add(execution::Column::Status.eq(ExecutionStatus::Running.as_str())).add(preclaimed())
    } else {
        Condition::all().add(execution::Column::Status.is_in(OPEN))
    };
    let updated = Executions::update_many()
        .col_expr(execution::Column::Status, Expr::value(status.as_str()))
        .col_expr(execution::Column::Result, Expr::value(result))
        .col_expr(execution::Column::Error, Expr::value(error))
        .col_expr(execution::Column::FinishedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::UpdatedAt, Expr::value(at.as_millis()))
        .col_expr(execution::Column::RetryAt, Expr::value(Option::<i64>::None))
        .col_expr(execution::Column::DeadlineAt, Expr::value(Option::<i64>::None))
        .filter(execution::Column::Id.eq(id.to_string()))
        .filter(open);
    let updated = match attempt {
        Some(attempt) => updated.filter(execution::Column::Attempt.eq(int(attempt))),
        None => updated,
    }
    .exec(conn)
    .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    let Some(attempt_status) = attempt_outcome(status) else { return Ok(true) };
    let current = match attempt {
        Some(attempt) => Some(attempt),
        None => Executions::find_by_id(id.to_string())
            .select_only()
            .column(execution::Column::Attempt)
            .into_tuple::<i32>()
            .one(conn)
            .await?
            .map(|attempt| uint("executions.attempt", attempt))
            .transpose()?,
    };
    match current {
        // A first attempt that succeeded keeps no row of its own.
        Some(1) if status == ExecutionStatus::Success => {}
        Some(attempt) if attempt > 0 => {
            end_attempt_in(conn, id, attempt, attempt_status, error, at).await?;
        }
        _ => {}
    }
    Ok(true)
}

/// Ends an attempt that is still in flight with a final `status`; false if it had already ended.
///
/// The first attempt has no row while in flight: it is written here, from the execution's instance and start, so
/// the execution row must not have moved to another attempt yet. It is inserted without an update first: an update
/// of a missing row locks the index gap where it would be, and two transactions that each hold that gap and insert
/// into it deadlock.
async fn end_attempt_in(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
    attempt: u32,
    status: AttemptStatus,
    error: Option<&str>,
    at: Timestamp,
) -> Result<bool> {
    if attempt != 1 {
        return attempt_status_in(conn, id, attempt, status, error, at).await;
    }
    let existing = Attempts::find()
        .filter(Column::ExecutionId.eq(id.to_string()))
        .filter(Column::Attempt.eq(1))
        .count(conn)
        .await?;
    if existing > 0 {
        return Ok(false);
    }
    let row: Option<(Option<String>, Option<i64>)> = Executions::find_by_id(id.to_string())
        .select_only()
        .column(execution::Column::ExecutorId)
        .column(execution::Column::StartedAt)
        .into_tuple()
        .one(conn)
        .await?;
    let Some((executor_id, started_at)) = row else { return Ok(false) };
    let row = execution_attempt::ActiveModel {
        execution_id: Set(id.to_string()),
        attempt: Set(1),
        executor_id: Set(executor_id),
        status: Set(status.as_str().to_owned()),
        started_at: Set(Ord::min(started_at.unwrap_or(at.as_millis()), at.as_millis())),
        finished_at: Set(Some(at.as_millis())),
        error: Set(error.map(str::to_owned)),
    };
    Attempts::insert(row).exec_without_returning(conn).await?;
    Ok(true)
}

/// The first attempt as the execution row records it, when it has no row of its own.
fn first_attempt(execution: &jobs_model::Execution) -> Option<Attempt> {
    if execution.attempt != 1 {
        return None;
    }
    let status = match execution.status {
        ExecutionStatus::Pending => AttemptStatus::Sending,
        ExecutionStatus::Running => AttemptStatus::Running,
        status => attempt_outcome(status)?,
    };
    Some(Attempt {
        attempt: 1,
        executor_id: execution.executor_id,
        status,
        started_at: execution.started_at.unwrap_or(execution.scheduled_at),
        finished_at: execution.finished_at,
        error: if status == AttemptStatus::Success { None } else { execution.error.clone() },
    })
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
