//! Executions: manual inserts, lookups, filtered listing newest first, recovery queries and running counts.

use std::collections::HashMap;

use jobs_model::{Execution, ExecutionId, ExecutionMode, ExecutionStatus, ExecutorId, TaskId, Timestamp, TriggerType};
use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::convert::{self, int, uint};
use crate::entity::execution::{self, Column, Entity as Executions};
use crate::entity::task;
use crate::error::conflict_on_unique;
use crate::{Result, Store};

/// Which executions `list_executions` returns: filters, then a page of `limit` (0: all) before the `before` cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub task_id: Option<TaskId>,
    pub status: Option<ExecutionStatus>,
    pub trigger_type: Option<TriggerType>,
    pub executor_id: Option<ExecutorId>,
    /// Earliest `scheduled_at`, inclusive.
    pub from: Option<Timestamp>,
    /// Latest `scheduled_at`, inclusive.
    pub to: Option<Timestamp>,
    /// Only executions with a smaller id (the last id of the previous page).
    pub before: Option<ExecutionId>,
    pub limit: u64,
}

/// The claimed fires of the leader now in office that [`Store::pending_candidates`] leaves out: those claimed to
/// be sent at `recent_since` or later, and those claimed to be sent before `settled_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnClaims {
    pub epoch: i64,
    pub recent_since: Timestamp,
    pub settled_before: Timestamp,
}

impl Store {
    /// Stores a manual or retry execution (a cron execution too, guarded by its slot); a duplicate is a conflict.
    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, task_id = %execution.task_id))]
    pub async fn insert_execution(&self, execution: &Execution) -> Result<()> {
        let model = to_active(execution, execution.epoch)?;
        Executions::insert(model).exec_without_returning(self.connection()).await.map_err(|err| {
            conflict_on_unique(err, || {
                format!(
                    "execution {} of task `{}` scheduled at {} already exists",
                    execution.id, execution.task_name, execution.scheduled_at
                )
            })
        })?;
        Ok(())
    }

    pub async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>> {
        Executions::find_by_id(id.to_string()).one(self.connection()).await?.map(from_model).transpose()
    }

    /// Executions newest first (ids are UUIDv7, so id order is creation order).
    pub async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>> {
        let mut query = Executions::find().order_by_desc(Column::Id);
        if let Some(task_id) = filter.task_id {
            query = query.filter(Column::TaskId.eq(task_id.to_string()));
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        if let Some(trigger_type) = filter.trigger_type {
            query = query.filter(Column::TriggerType.eq(trigger_type.as_str()));
        }
        if let Some(executor_id) = filter.executor_id {
            query = query.filter(Column::ExecutorId.eq(executor_id.to_string()));
        }
        if let Some(from) = filter.from {
            query = query.filter(Column::ScheduledAt.gte(from.as_millis()));
        }
        if let Some(to) = filter.to {
            query = query.filter(Column::ScheduledAt.lte(to.as_millis()));
        }
        if let Some(before) = filter.before {
            query = query.filter(Column::Id.lt(before.to_string()));
        }
        if filter.limit > 0 {
            query = query.limit(filter.limit);
        }
        query.all(self.connection()).await?.into_iter().map(from_model).collect()
    }

    /// Up to `limit` (0: all) executions in `status`, oldest first: what a new leader picks up.
    pub async fn executions_with_status(&self, status: ExecutionStatus, limit: u64) -> Result<Vec<Execution>> {
        let mut query = Executions::find().filter(Column::Status.eq(status.as_str())).order_by_asc(Column::Id);
        if limit > 0 {
            query = query.limit(limit);
        }
        query.all(self.connection()).await?.into_iter().map(from_model).collect()
    }

    /// The pending executions the leader's queue may start now, at most `limit` of each kind:
    ///
    /// - the head (oldest pending execution) of every task, if it is due: a sequential task's waiting fires are
    ///   never candidates behind it, so they cannot crowd out what is due elsewhere;
    /// - every due pending execution of a task whose mode is not `sequential` (triggers, retries, fires left
    ///   behind by a previous leader), which need not wait for each other, and every due shard of a split broadcast
    ///   fire (admitted with its fire: a later fire at the head of a sequential task's line must not hide it).
    ///
    /// Due means its slot came (`scheduled_at <= now`) and so did its retry time, if it has one.
    ///
    /// With `own`, the fires that leader epoch claimed are left out unless their send time lies in
    /// `[settled_before, recent_since)`: the recent ones its dispatcher holds (a burst of a thousand claims need not
    /// be read twice a second for nothing), and the old ones were sent (or their send is unknown) and are settled by
    /// their instance's heartbeats, never sent again from a stale read.
    pub async fn pending_candidates(
        &self,
        now: Timestamp,
        limit: u64,
        own: Option<OwnClaims>,
    ) -> Result<Vec<Execution>> {
        let not_own = || match own {
            Some(own) => Condition::any()
                .add(Column::Attempt.ne(1))
                .add(Column::RetryAt.is_not_null())
                .add(Column::Epoch.is_null())
                .add(Column::Epoch.ne(own.epoch))
                .add(Column::StartedAt.is_null())
                .add(
                    Condition::all()
                        .add(Column::StartedAt.lt(own.recent_since.as_millis()))
                        .add(Column::StartedAt.gte(own.settled_before.as_millis())),
                ),
            None => Condition::all(),
        };
        let pending = || Condition::all().add(Column::Status.eq(ExecutionStatus::Pending.as_str())).add(not_own());
        let due = || {
            Condition::all()
                .add(Column::ScheduledAt.lte(now.as_millis()))
                .add(Condition::any().add(Column::RetryAt.is_null()).add(Column::RetryAt.lte(now.as_millis())))
        };
        let heads = Query::select()
            .expr(Func::min(Expr::col(Column::Id)))
            .from(Executions)
            .cond_where(pending())
            .group_by_col(Column::TaskId)
            .to_owned();
        let mut rows = Executions::find()
            .filter(Column::Id.in_subquery(heads))
            .filter(due())
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?;
        let unordered = Query::select()
            .column(task::Column::Id)
            .from(task::Entity)
            .and_where(task::Column::ExecutionMode.ne(ExecutionMode::Sequential.as_str()))
            .to_owned();
        rows.extend(
            Executions::find()
                .filter(pending())
                .filter(due())
                // The shards of a split broadcast fire were admitted with their fire: they never wait in line.
                .filter(Condition::any().add(Column::TaskId.in_subquery(unordered)).add(Column::FireId.is_not_null()))
                .order_by_asc(Column::Id)
                .limit(limit)
                .all(self.connection())
                .await?,
        );
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.dedup_by(|a, b| a.id == b.id);
        rows.into_iter().map(from_model).collect()
    }

    /// The open (pending or running) executions of a task, oldest first: what its execution mode looks at.
    pub async fn open_executions_of_task(&self, task_id: TaskId) -> Result<Vec<Execution>> {
        Executions::find()
            .filter(Column::TaskId.eq(task_id.to_string()))
            .filter(Column::Status.is_in(crate::attempts::OPEN))
            .order_by_asc(Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// Running executions whose attempt is past its deadline.
    pub async fn running_overdue(&self, now: Timestamp, limit: u64) -> Result<Vec<Execution>> {
        let mut query = Executions::find()
            .filter(Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(Column::DeadlineAt.lt(now.as_millis()))
            .order_by_asc(Column::Id);
        if limit > 0 {
            query = query.limit(limit);
        }
        query.all(self.connection()).await?.into_iter().map(from_model).collect()
    }

    /// The executions an executor instance is running.
    pub async fn running_on(&self, executor_id: ExecutorId) -> Result<Vec<Execution>> {
        Executions::find()
            .filter(Column::ExecutorId.eq(executor_id.to_string()))
            .filter(Column::Status.eq(ExecutionStatus::Running.as_str()))
            .order_by_asc(Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// The fires leader epoch `epoch` claimed for an executor instance to be sent before `sent_before` and still not
    /// marked as taken: sent, as far as that leader can tell.
    pub async fn claims_sent_to(
        &self,
        executor_id: ExecutorId,
        epoch: i64,
        sent_before: Timestamp,
    ) -> Result<Vec<Execution>> {
        Executions::find()
            .filter(Column::ExecutorId.eq(executor_id.to_string()))
            .filter(Column::Status.eq(ExecutionStatus::Pending.as_str()))
            .filter(Column::Attempt.eq(1))
            .filter(Column::RetryAt.is_null())
            .filter(Column::Epoch.eq(epoch))
            .filter(Column::StartedAt.lt(sent_before.as_millis()))
            .order_by_asc(Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// How many executions each executor instance is running.
    pub async fn running_counts(&self) -> Result<HashMap<ExecutorId, u32>> {
        let rows: Vec<(Option<String>, i64)> = Executions::find()
            .select_only()
            .column(Column::ExecutorId)
            .column_as(Column::Id.count(), "running")
            .filter(Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(Column::ExecutorId.is_not_null())
            .group_by(Column::ExecutorId)
            .into_tuple()
            .all(self.connection())
            .await?;
        let mut counts = HashMap::with_capacity(rows.len());
        for (executor_id, running) in rows {
            let Some(executor_id) =
                convert::opt_id("executions.executor_id", executor_id.as_deref(), ExecutorId::parse)?
            else {
                continue;
            };
            counts.insert(executor_id, u32::try_from(running).unwrap_or(u32::MAX));
        }
        Ok(counts)
    }
}

/// The slot key of an execution: its cron slot for a cron fire (the first shard of a broadcast one), else none.
pub(crate) fn fire_key(execution: &Execution) -> Option<i64> {
    let first_shard = execution.shard.is_none_or(|shard| shard.index == 0);
    (execution.trigger_type == TriggerType::Cron && first_shard).then_some(execution.scheduled_at.as_millis())
}

/// The row for an execution; `fire_key` is the cron slot, so that one slot of a task is stored at most once (a
/// broadcast fire's shards share the slot: its first shard holds the key).
pub(crate) fn to_active(execution: &Execution, epoch: Option<i64>) -> Result<execution::ActiveModel> {
    let fire_key = fire_key(execution);
    Ok(execution::ActiveModel {
        id: Set(execution.id.to_string()),
        task_id: Set(execution.task_id.to_string()),
        task_name: Set(execution.task_name.clone()),
        trigger_type: Set(execution.trigger_type.as_str().to_owned()),
        status: Set(execution.status.as_str().to_owned()),
        scheduled_at: Set(execution.scheduled_at.as_millis()),
        fire_key: Set(fire_key),
        parameters: Set(convert::to_json("parameters", &execution.parameters)?),
        executor_id: Set(execution.executor_id.map(|id| id.to_string())),
        attempt: Set(int(execution.attempt)),
        retries: Set(int(execution.retries)),
        retry_at: Set(execution.retry_at.map(Timestamp::as_millis)),
        deadline_at: Set(execution.deadline_at.map(Timestamp::as_millis)),
        epoch: Set(epoch),
        missed_slots: Set(int(execution.missed_slots)),
        created_at: Set(execution.created_at.as_millis()),
        started_at: Set(execution.started_at.map(Timestamp::as_millis)),
        finished_at: Set(execution.finished_at.map(Timestamp::as_millis)),
        updated_at: Set(execution.finished_at.or(execution.started_at).unwrap_or(execution.created_at).as_millis()),
        result: Set(convert::opt_to_json("result", execution.result.as_ref())?),
        error: Set(execution.error.clone()),
        upstream_execution_id: Set(execution.upstream_execution_id.map(|id| id.to_string())),
        fire_id: Set(execution.fire_id.map(|id| id.to_string())),
        shard_index: Set(execution.shard.map(|shard| int(shard.index))),
        shard_total: Set(execution.shard.map(|shard| int(shard.total))),
    })
}

pub(crate) fn from_model(model: execution::Model) -> Result<Execution> {
    Ok(Execution {
        id: convert::id("executions.id", &model.id, ExecutionId::parse)?,
        task_id: convert::id("executions.task_id", &model.task_id, TaskId::parse)?,
        trigger_type: convert::word("executions.trigger_type", &model.trigger_type)?,
        status: convert::word("executions.status", &model.status)?,
        scheduled_at: Timestamp::from_millis(model.scheduled_at),
        parameters: convert::json("executions.parameters", &model.parameters)?,
        executor_id: convert::opt_id("executions.executor_id", model.executor_id.as_deref(), ExecutorId::parse)?,
        attempt: uint("executions.attempt", model.attempt)?,
        retries: uint("executions.retries", model.retries)?,
        retry_at: model.retry_at.map(Timestamp::from_millis),
        deadline_at: model.deadline_at.map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(model.created_at),
        started_at: model.started_at.map(Timestamp::from_millis),
        finished_at: model.finished_at.map(Timestamp::from_millis),
        result: convert::opt_json("executions.result", model.result.as_deref())?,
        task_name: model.task_name,
        error: model.error,
        missed_slots: uint("executions.missed_slots", model.missed_slots)?,
        upstream_execution_id: convert::opt_id(
            "executions.upstream_execution_id",
            model.upstream_execution_id.as_deref(),
            ExecutionId::parse,
        )?,
        fire_id: convert::opt_id("executions.fire_id", model.fire_id.as_deref(), ExecutionId::parse)?,
        shard: match (model.shard_index, model.shard_total) {
            (Some(index), Some(total)) => Some(jobs_model::protocol::Shard {
                index: uint("executions.shard_index", index)?,
                total: uint("executions.shard_total", total)?,
            }),
            _ => None,
        },
        epoch: model.epoch,
    })
}
