//! Tasks: create, replace, look up, list with a cursor, delete, and the planner's view of them.

use jobs_model::{Task, TaskId, TaskSpec, Timestamp};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::convert::{self, int, uint};
use crate::entity::task::{self, Column, Entity as Tasks};
use crate::error::conflict_on_unique;
use crate::{Error, Result, Store};

/// Which tasks `list_tasks` returns: filters, and a page of `limit` (0: all) after the `after` cursor, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    pub enabled: Option<bool>,
    /// Only tasks with a greater id (the last id of the previous page).
    pub after: Option<TaskId>,
    pub limit: u64,
}

impl Store {
    /// Stores a new task; a taken name is a conflict.
    #[tracing::instrument(skip_all, fields(task_id = %task.id, name = %task.spec.name))]
    pub async fn insert_task(&self, task: &Task) -> Result<()> {
        let model = to_active(task)?;
        Tasks::insert(model)
            .exec_without_returning(self.connection())
            .await
            .map_err(|err| conflict_on_unique(err, || format!("task `{}` already exists", task.spec.name)))?;
        Ok(())
    }

    /// Replaces a task's spec, `next_fire_at` and `updated_at` (not `created_at`).
    #[tracing::instrument(skip_all, fields(task_id = %task.id))]
    pub async fn update_task(&self, task: &Task) -> Result<()> {
        let mut model = to_active(task)?;
        model.id = sea_orm::ActiveValue::NotSet;
        model.created_at = sea_orm::ActiveValue::NotSet;
        let result = Tasks::update_many()
            .set(model)
            .filter(Column::Id.eq(task.id.to_string()))
            .exec(self.connection())
            .await
            .map_err(|err| conflict_on_unique(err, || format!("task `{}` already exists", task.spec.name)))?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound(format!("task {} not found", task.id)));
        }
        Ok(())
    }

    pub async fn get_task(&self, id: TaskId) -> Result<Option<Task>> {
        Tasks::find_by_id(id.to_string()).one(self.connection()).await?.map(from_model).transpose()
    }

    pub async fn find_task_by_name(&self, name: &str) -> Result<Option<Task>> {
        Tasks::find().filter(Column::Name.eq(name)).one(self.connection()).await?.map(from_model).transpose()
    }

    /// Tasks by ascending id, filtered, one page at a time.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut query = Tasks::find().order_by_asc(Column::Id);
        if let Some(fragment) = &filter.name_contains {
            let pattern = format!("%{}%", escape_like(&fragment.to_lowercase()));
            query = query.filter(Func::lower(Expr::col(Column::Name)).like(LikeExpr::new(pattern).escape('!')));
        }
        if let Some(enabled) = filter.enabled {
            query = query.filter(Column::Enabled.eq(enabled));
        }
        if let Some(after) = filter.after {
            query = query.filter(Column::Id.gt(after.to_string()));
        }
        if filter.limit > 0 {
            query = query.limit(filter.limit);
        }
        query.all(self.connection()).await?.into_iter().map(from_model).collect()
    }

    /// Every enabled task with a cron expression: what the planner schedules.
    pub async fn schedulable_tasks(&self) -> Result<Vec<Task>> {
        self.schedulable_tasks_after(None, 0).await
    }

    /// A page of [`Store::schedulable_tasks`] by ascending id: at most `limit` (0: all) after `after`.
    pub async fn schedulable_tasks_after(&self, after: Option<TaskId>, limit: u64) -> Result<Vec<Task>> {
        let mut query = Tasks::find()
            .filter(Column::Enabled.eq(true))
            .filter(Column::CronExpression.is_not_null())
            .order_by_asc(Column::Id);
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after.to_string()));
        }
        if limit > 0 {
            query = query.limit(limit);
        }
        query.all(self.connection()).await?.into_iter().map(from_model).collect()
    }

    /// The tasks among `ids` that exist, in no particular order.
    pub async fn get_tasks(&self, ids: &[TaskId]) -> Result<Vec<Task>> {
        let mut tasks = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows = Tasks::find()
                .filter(Column::Id.is_in(chunk.iter().map(ToString::to_string)))
                .all(self.connection())
                .await?;
            for row in rows {
                tasks.push(from_model(row)?);
            }
        }
        Ok(tasks)
    }

    /// The id and `updated_at` of the tasks changed at or after `since`: what the change poll compares before it reads
    /// whole rows.
    pub async fn task_versions_since(&self, since: Timestamp) -> Result<Vec<(TaskId, Timestamp)>> {
        let rows: Vec<(String, i64)> = Tasks::find()
            .select_only()
            .column(Column::Id)
            .column(Column::UpdatedAt)
            .filter(Column::UpdatedAt.gte(since.as_millis()))
            .into_tuple()
            .all(self.connection())
            .await?;
        rows.into_iter()
            .map(|(id, updated_at)| {
                Ok((convert::id("tasks.id", &id, TaskId::parse)?, Timestamp::from_millis(updated_at)))
            })
            .collect()
    }

    /// Deletes a task (its executions stay as history); false if there was none.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn delete_task(&self, id: TaskId) -> Result<bool> {
        let result = Tasks::delete_by_id(id.to_string()).exec(self.connection()).await?;
        Ok(result.rows_affected > 0)
    }

    /// Sets the next cron fire the planner will write (`None`: none planned).
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn set_next_fire(&self, id: TaskId, next: Option<Timestamp>) -> Result<()> {
        let result = Tasks::update_many()
            .col_expr(Column::NextFireAt, Expr::value(next.map(Timestamp::as_millis)))
            .filter(Column::Id.eq(id.to_string()))
            .exec(self.connection())
            .await?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound(format!("task {id} not found")));
        }
        Ok(())
    }
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '!'` pattern (no backslash: MySQL reads it in literals).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            escaped.push('!');
        }
        escaped.push(c);
    }
    escaped
}

fn to_active(task: &Task) -> Result<task::ActiveModel> {
    let spec = &task.spec;
    Ok(task::ActiveModel {
        id: Set(task.id.to_string()),
        name: Set(spec.name.clone()),
        description: Set(spec.description.clone()),
        cron_expression: Set(spec.cron_expression.clone()),
        timezone: Set(spec.timezone.clone()),
        execution_mode: Set(spec.execution_mode.as_str().to_owned()),
        load_balance_strategy: Set(spec.load_balance_strategy.clone()),
        max_retry: Set(int(spec.max_retry)),
        retry_backoff: Set(convert::opt_to_json("retry_backoff", spec.retry_backoff.as_ref())?),
        timeout_seconds: Set(int(spec.timeout_seconds)),
        misfire_policy: Set(spec.misfire_policy.as_str().to_owned()),
        max_catchup: Set(spec.max_catchup.map(int)),
        parameters: Set(convert::to_json("parameters", &spec.parameters)?),
        executor: Set(spec.executor.clone()),
        enabled: Set(spec.enabled),
        on_success: Set(names_to_json("on_success", &spec.on_success)?),
        on_failure: Set(names_to_json("on_failure", &spec.on_failure)?),
        next_fire_at: Set(task.next_fire_at.map(Timestamp::as_millis)),
        created_at: Set(task.created_at.as_millis()),
        updated_at: Set(task.updated_at.as_millis()),
    })
}

pub(crate) fn from_model(model: task::Model) -> Result<Task> {
    Ok(Task {
        id: convert::id("tasks.id", &model.id, TaskId::parse)?,
        spec: TaskSpec {
            execution_mode: convert::word("tasks.execution_mode", &model.execution_mode)?,
            max_retry: uint("tasks.max_retry", model.max_retry)?,
            retry_backoff: convert::opt_json("tasks.retry_backoff", model.retry_backoff.as_deref())?,
            timeout_seconds: uint("tasks.timeout_seconds", model.timeout_seconds)?,
            misfire_policy: convert::word("tasks.misfire_policy", &model.misfire_policy)?,
            max_catchup: model.max_catchup.map(|max| uint("tasks.max_catchup", max)).transpose()?,
            parameters: convert::json("tasks.parameters", &model.parameters)?,
            name: model.name,
            description: model.description,
            cron_expression: model.cron_expression,
            timezone: model.timezone,
            load_balance_strategy: model.load_balance_strategy,
            executor: model.executor,
            enabled: model.enabled,
            on_success: names("tasks.on_success", model.on_success.as_deref())?,
            on_failure: names("tasks.on_failure", model.on_failure.as_deref())?,
        },
        next_fire_at: model.next_fire_at.map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(model.created_at),
        updated_at: Timestamp::from_millis(model.updated_at),
    })
}

/// A chain's task names as stored: a JSON array, or NULL when there are none (so that finding the tasks with chains
/// is `IS NOT NULL`).
fn names_to_json(field: &str, names: &[String]) -> Result<Option<String>> {
    if names.is_empty() { Ok(None) } else { convert::to_json(field, &names).map(Some) }
}

pub(crate) fn names(column: &str, text: Option<&str>) -> Result<Vec<String>> {
    Ok(convert::opt_json(column, text)?.unwrap_or_default())
}
