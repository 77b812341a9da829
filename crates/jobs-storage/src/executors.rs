//! Executor instances and the task names each declared: idempotent registration, status, liveness, removal.

use std::collections::{BTreeSet, HashMap};

use jobs_model::{Executor, ExecutorId, ExecutorStatus, Health, Timestamp};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use crate::convert::{self, int, uint};
use crate::entity::executor::{self, Column, Entity as Executors};
use crate::entity::executor_task::{self, Entity as ExecutorTasks};
use crate::error::is_race;
use crate::{Error, Result, Store};

/// Which executors `list_executors` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorFilter {
    /// The executor group name, exactly.
    pub name: Option<String>,
    pub status: Option<ExecutorStatus>,
}

/// Declared tasks per multi-row insert (two placeholders each).
const DECLARED_PER_INSERT: usize = 1_000;

impl Store {
    /// Registers an instance, idempotently on `(name, instance_id)`; returns the stored executor and whether it is new.
    ///
    /// A known instance keeps its id, `registered_at` and operator status; everything it declares is replaced, and
    /// it counts as healthy with a heartbeat at `last_heartbeat_at` (or `registered_at`) of the given executor.
    #[tracing::instrument(skip_all, fields(name = %executor.name, instance_id = %executor.instance_id))]
    pub async fn upsert_executor(&self, executor: &Executor) -> Result<(Executor, bool)> {
        match self.try_upsert_executor(executor).await {
            // Two registrations of a new instance raced: the other one inserted it, so this one updates.
            Err(err) if is_race(&err) => self.try_upsert_executor(executor).await,
            other => other,
        }
    }

    async fn try_upsert_executor(&self, executor: &Executor) -> Result<(Executor, bool)> {
        let now = executor.last_heartbeat_at.unwrap_or(executor.registered_at).as_millis();
        let txn = self.begin().await?;
        let existing = Executors::find()
            .filter(Column::Name.eq(&executor.name))
            .filter(Column::InstanceId.eq(&executor.instance_id))
            .one(&txn)
            .await?;
        let created = existing.is_none();
        let id = match existing {
            Some(row) => {
                let mut model = declared(executor)?;
                model.last_heartbeat_at = Set(Some(now));
                model.updated_at = Set(now);
                Executors::update_many().set(model).filter(Column::Id.eq(&row.id)).exec(&txn).await?;
                ExecutorTasks::delete_many().filter(executor_task::Column::ExecutorId.eq(&row.id)).exec(&txn).await?;
                row.id
            }
            None => {
                let mut model = declared(executor)?;
                model.id = Set(executor.id.to_string());
                model.name = Set(executor.name.clone());
                model.instance_id = Set(executor.instance_id.clone());
                model.status = Set(executor.status.as_str().to_owned());
                model.status_reason = Set(executor.status_reason.clone());
                model.status_changed_by = Set(executor.status_changed_by.clone());
                model.status_changed_at = Set(executor.status_changed_at.map(Timestamp::as_millis));
                model.last_heartbeat_at = Set(Some(now));
                model.registered_at = Set(executor.registered_at.as_millis());
                model.updated_at = Set(now);
                Executors::insert(model).exec_without_returning(&txn).await?;
                executor.id.to_string()
            }
        };
        let tasks: Vec<&String> = executor.tasks.iter().collect::<BTreeSet<_>>().into_iter().collect();
        // In chunks: a statement takes at most 65,535 placeholders, and an instance may declare more tasks.
        for chunk in tasks.chunks(DECLARED_PER_INSERT) {
            let rows = chunk.iter().map(|task_name| executor_task::ActiveModel {
                executor_id: Set(id.clone()),
                task_name: Set((*task_name).clone()),
            });
            ExecutorTasks::insert_many(rows).exec_without_returning(&txn).await?;
        }
        let stored = find_one(&txn, &id).await?;
        txn.commit().await?;
        let stored = stored.ok_or_else(|| Error::NotFound(format!("executor {id} vanished while registering")))?;
        Ok((stored, created))
    }

    pub async fn get_executor(&self, id: ExecutorId) -> Result<Option<Executor>> {
        find_one(self.connection(), &id.to_string()).await
    }

    /// Executors by group name and instance id, each with its declared tasks.
    pub async fn list_executors(&self, filter: &ExecutorFilter) -> Result<Vec<Executor>> {
        let mut query = Executors::find().order_by_asc(Column::Name).order_by_asc(Column::InstanceId);
        if let Some(name) = &filter.name {
            query = query.filter(Column::Name.eq(name));
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        let rows = query.all(self.connection()).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut tasks_query = ExecutorTasks::find().order_by_asc(executor_task::Column::TaskName);
        if filter.name.is_some() || filter.status.is_some() {
            tasks_query =
                tasks_query.filter(executor_task::Column::ExecutorId.is_in(rows.iter().map(|row| row.id.clone())));
        }
        let mut tasks: HashMap<String, Vec<String>> = HashMap::new();
        for row in tasks_query.all(self.connection()).await? {
            tasks.entry(row.executor_id).or_default().push(row.task_name);
        }
        rows.into_iter()
            .map(|row| {
                let declared = tasks.remove(&row.id).unwrap_or_default();
                from_model(row, declared)
            })
            .collect()
    }

    /// Sets the operator status (`maintenance` takes no new work); false if the executor is unknown.
    #[tracing::instrument(skip_all, fields(executor_id = %id, status = %status))]
    pub async fn set_executor_status(
        &self,
        id: ExecutorId,
        status: ExecutorStatus,
        reason: Option<&str>,
        by: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        let result = Executors::update_many()
            .col_expr(Column::Status, Expr::value(status.as_str()))
            .col_expr(Column::StatusReason, Expr::value(reason.map(str::to_owned)))
            .col_expr(Column::StatusChangedBy, Expr::value(by.map(str::to_owned)))
            .col_expr(Column::StatusChangedAt, Expr::value(at.as_millis()))
            .col_expr(Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(Column::Id.eq(id.to_string()))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Records a heartbeat; false if the executor is unknown (it should register again).
    pub async fn record_heartbeat(&self, id: ExecutorId, at: Timestamp) -> Result<bool> {
        let result = Executors::update_many()
            .col_expr(Column::LastHeartbeatAt, Expr::value(at.as_millis()))
            .col_expr(Column::UpdatedAt, Expr::value(at.as_millis()))
            .filter(Column::Id.eq(id.to_string()))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Stores what health checks found.
    pub async fn record_health(
        &self,
        id: ExecutorId,
        health: Health,
        consecutive_failures: u32,
        consecutive_successes: u32,
    ) -> Result<()> {
        let result = Executors::update_many()
            .col_expr(Column::Health, Expr::value(health.as_str()))
            .col_expr(Column::ConsecutiveFailures, Expr::value(int(consecutive_failures)))
            .col_expr(Column::ConsecutiveSuccesses, Expr::value(int(consecutive_successes)))
            .filter(Column::Id.eq(id.to_string()))
            .exec(self.connection())
            .await?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound(format!("executor {id} not found")));
        }
        Ok(())
    }

    /// Deregisters an executor and forgets its declared tasks; false if it was unknown.
    #[tracing::instrument(skip_all, fields(executor_id = %id))]
    pub async fn delete_executor(&self, id: ExecutorId) -> Result<bool> {
        let txn = self.begin().await?;
        ExecutorTasks::delete_many().filter(executor_task::Column::ExecutorId.eq(id.to_string())).exec(&txn).await?;
        let result = Executors::delete_by_id(id.to_string()).exec(&txn).await?;
        txn.commit().await?;
        Ok(result.rows_affected > 0)
    }
}

/// The columns a registration declares (everything but identity, operator status and timestamps), healthy again.
fn declared(executor: &Executor) -> Result<executor::ActiveModel> {
    Ok(executor::ActiveModel {
        id: NotSet,
        name: NotSet,
        instance_id: NotSet,
        base_url: Set(executor.base_url.clone()),
        health_check_url: Set(executor.health_check_url.clone()),
        weight: Set(int(executor.weight)),
        tags: Set(convert::to_json("tags", &executor.tags)?),
        metadata: Set(convert::to_json("metadata", &executor.metadata)?),
        status: NotSet,
        status_reason: NotSet,
        status_changed_by: NotSet,
        status_changed_at: NotSet,
        health: Set(Health::Healthy.as_str().to_owned()),
        consecutive_failures: Set(0),
        consecutive_successes: Set(0),
        last_heartbeat_at: NotSet,
        registered_at: NotSet,
        updated_at: NotSet,
        early_delivery_ms: Set(i64::try_from(executor.early_delivery_ms).unwrap_or(i64::MAX)),
        max_concurrency: Set(executor.max_concurrency.map(|max| i32::try_from(max).unwrap_or(i32::MAX))),
    })
}

async fn find_one(db: &impl ConnectionTrait, id: &str) -> Result<Option<Executor>> {
    let Some(row) = Executors::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let tasks = ExecutorTasks::find()
        .filter(executor_task::Column::ExecutorId.eq(id))
        .order_by_asc(executor_task::Column::TaskName)
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.task_name)
        .collect();
    from_model(row, tasks).map(Some)
}

fn from_model(model: executor::Model, tasks: Vec<String>) -> Result<Executor> {
    Ok(Executor {
        id: convert::id("executors.id", &model.id, ExecutorId::parse)?,
        weight: uint("executors.weight", model.weight)?,
        tags: convert::json("executors.tags", &model.tags)?,
        metadata: convert::json("executors.metadata", &model.metadata)?,
        status: convert::word("executors.status", &model.status)?,
        status_changed_at: model.status_changed_at.map(Timestamp::from_millis),
        health: convert::word("executors.health", &model.health)?,
        consecutive_failures: uint("executors.consecutive_failures", model.consecutive_failures)?,
        consecutive_successes: uint("executors.consecutive_successes", model.consecutive_successes)?,
        last_heartbeat_at: model.last_heartbeat_at.map(Timestamp::from_millis),
        registered_at: Timestamp::from_millis(model.registered_at),
        name: model.name,
        instance_id: model.instance_id,
        base_url: model.base_url,
        health_check_url: model.health_check_url,
        status_reason: model.status_reason,
        status_changed_by: model.status_changed_by,
        tasks,
        early_delivery_ms: u64::try_from(model.early_delivery_ms).unwrap_or(0),
        max_concurrency: model.max_concurrency.and_then(|max| u32::try_from(max).ok()),
    })
}
