//! The task service: create, change, pause, resume, delete and trigger tasks.

use jobs_cron::Schedule;
use jobs_model::{
    Execution, ExecutionMode, ExecutionStatus, MisfirePolicy, Parameters, RetryBackoff, Task, TaskId, TaskSpec,
    Timestamp, TriggerType,
};
use jobs_storage::{TaskDeletion, TaskFilter};

use crate::{Engine, Error, Result};

/// A partial update: only the fields that are `Some` change.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub cron_expression: Option<Option<String>>,
    pub timezone: Option<String>,
    pub execution_mode: Option<ExecutionMode>,
    pub load_balance_strategy: Option<String>,
    pub max_retry: Option<u32>,
    pub retry_backoff: Option<Option<RetryBackoff>>,
    pub timeout_seconds: Option<u32>,
    pub misfire_policy: Option<MisfirePolicy>,
    pub max_catchup: Option<Option<u32>>,
    pub parameters: Option<Parameters>,
    pub executor: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub on_success: Option<Vec<String>>,
    pub on_failure: Option<Vec<String>>,
}

impl TaskPatch {
    /// Writes the fields that are set over `spec`.
    pub fn apply_to(self, spec: &mut TaskSpec) {
        macro_rules! set {
            ($($field:ident),+) => { $(if let Some(value) = self.$field { spec.$field = value; })+ };
        }
        set!(
            name,
            description,
            cron_expression,
            timezone,
            execution_mode,
            load_balance_strategy,
            max_retry,
            retry_backoff,
            timeout_seconds,
            misfire_policy,
            max_catchup,
            parameters,
            executor,
            enabled,
            on_success,
            on_failure
        );
    }
}

impl Engine {
    /// Checks a task's fields, its schedule and its strategy; returns the parsed schedule.
    pub fn validate_task(&self, spec: &TaskSpec) -> Result<Option<Schedule>> {
        spec.validate()?;
        self.strategies.get(&spec.load_balance_strategy)?;
        jobs_cron::validate_timezone(&spec.timezone)?;
        let schedule = match &spec.cron_expression {
            Some(expression) => Some(Schedule::parse(expression, &spec.timezone)?),
            None => None,
        };
        Ok(schedule)
    }

    /// The first fire of an enabled task with a schedule that starts now (created, enabled, or given a new
    /// schedule). An `@at` instant already past fires once at once if the misfire policy fires missed slots, and is
    /// refused otherwise.
    fn first_fire(spec: &TaskSpec, schedule: Option<&Schedule>, now: Timestamp) -> Result<Option<Timestamp>> {
        let Some(schedule) = schedule.filter(|_| spec.enabled) else { return Ok(None) };
        let catch_up = spec.misfire_policy != MisfirePolicy::Skip;
        match schedule.first_fire(now, catch_up) {
            None if schedule.is_one_shot() => {
                Err(jobs_cron::Error::PastInstant { expression: schedule.expression().to_owned() }.into())
            }
            next => Ok(next),
        }
    }

    #[tracing::instrument(skip_all, fields(task = %spec.name))]
    pub async fn create_task(&self, spec: TaskSpec) -> Result<Task> {
        let schedule = self.validate_task(&spec)?;
        self.check_chains(&spec, None).await?;
        let now = self.clock.now();
        let task = Task {
            id: TaskId::new(),
            next_fire_at: Self::first_fire(&spec, schedule.as_ref(), now)?,
            spec,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_task(&task).await?;
        tracing::info!(task_id = %task.id, next_fire_at = ?task.next_fire_at.map(|at| at.to_string()), "task created");
        self.task_changed(task.id);
        Ok(task)
    }

    /// Finds a task by its id or, failing that, by its name.
    pub async fn find_task(&self, key: &str) -> Result<Task> {
        if let Some(id) = TaskId::parse(key)
            && let Some(task) = self.store.get_task(id).await?
        {
            return Ok(task);
        }
        self.store.find_task_by_name(key).await?.ok_or_else(|| Error::TaskNotFound(key.to_owned()))
    }

    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        Ok(self.store.list_tasks(filter).await?)
    }

    /// The enabled tasks with a next fire, soonest first: at most `limit`.
    pub async fn next_fires(&self, limit: u64) -> Result<Vec<Task>> {
        Ok(self.store.next_fires(limit).await?)
    }

    /// Replaces a task's fields (`PUT`).
    pub async fn replace_task(&self, key: &str, spec: TaskSpec) -> Result<Task> {
        let current = self.find_task(key).await?;
        self.store_change(current, spec).await
    }

    /// Changes some of a task's fields (`PATCH`, pause, resume).
    pub async fn patch_task(&self, key: &str, patch: TaskPatch) -> Result<Task> {
        let current = self.find_task(key).await?;
        let mut spec = current.spec.clone();
        patch.apply_to(&mut spec);
        self.store_change(current, spec).await
    }

    async fn store_change(&self, current: Task, spec: TaskSpec) -> Result<Task> {
        let schedule = self.validate_task(&spec)?;
        self.check_chains(&spec, Some(&current.spec.name)).await?;
        let schedule_changed = spec.cron_expression != current.spec.cron_expression
            || spec.timezone != current.spec.timezone
            || spec.enabled != current.spec.enabled;
        let next_fire_at = if schedule_changed {
            Self::first_fire(&spec, schedule.as_ref(), self.clock.now())?
        } else {
            current.next_fire_at
        };
        let task = Task { spec, next_fire_at, updated_at: self.clock.now(), ..current };
        self.store.update_task(&task).await?;
        tracing::info!(task_id = %task.id, "task updated");
        self.task_changed(task.id);
        Ok(task)
    }

    /// Deletes a task; its execution history stays.
    ///
    /// A task with pending or running executions is refused (`Conflict`) unless `force`, which cancels them in the
    /// same transaction as the deletion: a trigger racing the deletion either lands before it (and is cancelled with
    /// the rest) or finds the task gone.
    pub async fn delete_task(&self, key: &str, force: bool) -> Result<Task> {
        let task = self.find_task(key).await?;
        let reason = "cancelled: its task was deleted";
        match self.store.delete_task_ending_open(task.id, force, reason, self.clock.now()).await? {
            TaskDeletion::NotFound => return Err(Error::TaskNotFound(key.to_owned())),
            TaskDeletion::Busy(open) => return Err(Error::TaskBusy { name: task.spec.name.clone(), open }),
            TaskDeletion::Deleted(ended) => self.settler.ended_elsewhere(&ended, ExecutionStatus::Cancelled, reason),
        }
        tracing::info!(task_id = %task.id, "task deleted");
        self.task_changed(task.id);
        Ok(task)
    }

    /// Starts an execution now, with `parameters` merged over the task's.
    #[tracing::instrument(skip_all, fields(task = %key))]
    pub async fn trigger(&self, key: &str, parameters: &Parameters) -> Result<Execution> {
        let task = self.find_task(key).await?;
        let now = self.clock.now();
        let parameters = jobs_model::merge_parameters(&task.spec.parameters, parameters);
        let execution = Execution::pending(&task, TriggerType::Manual, now, parameters, now);
        if !self.store.insert_trigger(&execution).await? {
            return Err(Error::TaskNotFound(key.to_owned()));
        }
        tracing::info!(execution_id = %execution.id, "manual trigger");
        self.metrics.fired(TriggerType::Manual, 1);
        // The leader sends it now; elsewhere the leader's queue finds it in the database.
        if self.role().is_leader() {
            self.dispatcher.dispatch_now(execution.clone(), std::sync::Arc::new(task));
        }
        Ok(execution)
    }
}
