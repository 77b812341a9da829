//! The task service: create, change, pause, resume, delete and trigger tasks.

use jobs_cron::Schedule;
use jobs_model::protocol::{DeclaredTask, RegisterRequest, RegisterResponse};
use jobs_model::{
    Execution, ExecutionId, ExecutionMode, ExecutionStatus, MisfirePolicy, Parameters, RetryBackoff, Task, TaskId,
    TaskSpec, Timestamp, TriggerType,
};
use jobs_storage::TaskFilter;

use crate::planner::PlannerEvent;
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
    pub parameters: Option<Parameters>,
    pub executor: Option<Option<String>>,
    pub enabled: Option<bool>,
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
            parameters,
            executor,
            enabled
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

    /// The first fire after now, for an enabled task with a schedule.
    fn first_fire(spec: &TaskSpec, schedule: Option<&Schedule>) -> Option<Timestamp> {
        if !spec.enabled {
            return None;
        }
        schedule.and_then(|schedule| schedule.next_after(Timestamp::now()))
    }

    #[tracing::instrument(skip_all, fields(task = %spec.name))]
    pub async fn create_task(&self, spec: TaskSpec) -> Result<Task> {
        let schedule = self.validate_task(&spec)?;
        let now = Timestamp::now();
        let task = Task {
            id: TaskId::new(),
            next_fire_at: Self::first_fire(&spec, schedule.as_ref()),
            spec,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_task(&task).await?;
        tracing::info!(task_id = %task.id, next_fire_at = ?task.next_fire_at.map(|at| at.to_string()), "task created");
        self.notify(PlannerEvent::TaskChanged(task.id));
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
        let schedule_changed = spec.cron_expression != current.spec.cron_expression
            || spec.timezone != current.spec.timezone
            || spec.enabled != current.spec.enabled;
        let next_fire_at =
            if schedule_changed { Self::first_fire(&spec, schedule.as_ref()) } else { current.next_fire_at };
        let task = Task { spec, next_fire_at, updated_at: Timestamp::now(), ..current };
        self.store.update_task(&task).await?;
        tracing::info!(task_id = %task.id, "task updated");
        self.notify(PlannerEvent::TaskChanged(task.id));
        Ok(task)
    }

    /// Deletes a task; its execution history stays.
    ///
    /// A task with pending or running executions is refused (`Conflict`) unless `force`, which cancels them first.
    pub async fn delete_task(&self, key: &str, force: bool) -> Result<Task> {
        let task = self.find_task(key).await?;
        let mut open = self.store.executions_of_task(task.id, ExecutionStatus::Running, 0).await?;
        open.extend(self.store.executions_of_task(task.id, ExecutionStatus::Pending, 0).await?);
        if !open.is_empty() && !force {
            return Err(Error::TaskBusy { name: task.spec.name.clone(), open: open.len() });
        }
        for execution in &open {
            self.outcomes.cancel(execution, "cancelled: its task was deleted").await?;
        }
        self.store.delete_task(task.id).await?;
        tracing::info!(task_id = %task.id, "task deleted");
        self.notify(PlannerEvent::TaskChanged(task.id));
        Ok(task)
    }

    /// Starts an execution now, with `parameters` merged over the task's.
    #[tracing::instrument(skip_all, fields(task = %key))]
    pub async fn trigger(&self, key: &str, parameters: &Parameters) -> Result<Execution> {
        let task = self.find_task(key).await?;
        let now = Timestamp::now();
        let execution = Execution {
            id: ExecutionId::new(),
            task_id: task.id,
            task_name: task.spec.name.clone(),
            trigger_type: TriggerType::Manual,
            status: ExecutionStatus::Pending,
            scheduled_at: now,
            parameters: jobs_model::merge_parameters(&task.spec.parameters, parameters),
            executor_id: None,
            attempt: 0,
            retries: 0,
            retry_at: None,
            deadline_at: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            result: None,
            error: None,
        };
        self.store.insert_execution(&execution).await?;
        tracing::info!(execution_id = %execution.id, "manual trigger");
        self.metrics.fired(TriggerType::Manual, 1);
        if self.role().is_leader() {
            self.dispatcher.dispatch_now(execution.clone(), std::sync::Arc::new(task));
        } else {
            self.notify(PlannerEvent::Pending);
        }
        Ok(execution)
    }

    /// Registers an executor instance and creates the tasks it declares with a schedule that do not exist yet.
    ///
    /// Every declared task is checked before anything is stored; existing tasks are never changed.
    pub async fn register_executor(&self, request: &RegisterRequest) -> Result<(RegisterResponse, bool)> {
        let mut specs = Vec::new();
        for (index, declared) in request.tasks.iter().enumerate() {
            if let Some(cron) = &declared.cron {
                let spec = declared_spec(declared, cron, index)?;
                self.validate_task(&spec).map_err(|error| in_declared_task(error, index))?;
                specs.push(spec);
            }
        }
        let (executor, created) = self.registry.register(request).await?;
        let mut created_tasks = Vec::new();
        let mut existing_tasks = Vec::new();
        for spec in specs {
            if let Some(current) = self.store.find_task_by_name(&spec.name).await? {
                if current.spec.cron_expression != spec.cron_expression {
                    tracing::warn!(task = %spec.name, "declared task differs from the stored one; the stored one is kept");
                }
                existing_tasks.push(spec.name);
                continue;
            }
            let name = spec.name.clone();
            match self.create_task(spec).await {
                Ok(_) => created_tasks.push(name),
                Err(Error::Storage(error)) if error.kind() == jobs_model::ErrorKind::Conflict => {
                    existing_tasks.push(name)
                }
                Err(error) => return Err(error),
            }
        }
        let response = RegisterResponse {
            executor_id: executor.id,
            heartbeat_interval_seconds: self.registry.heartbeat_interval_seconds(),
            created_tasks,
            existing_tasks,
        };
        Ok((response, created))
    }
}

/// Names the declared task an error is about.
fn in_declared_task(error: Error, index: usize) -> Error {
    match error {
        Error::Invalid(jobs_model::Error::Invalid { field, message }) => {
            jobs_model::Error::invalid(format!("tasks[{index}].{field}"), message).into()
        }
        other => other,
    }
}

/// The task a registration declares, with the seed's field names mapped to the task's.
fn declared_spec(declared: &DeclaredTask, cron: &str, _index: usize) -> Result<TaskSpec> {
    let mut spec = TaskSpec::named(declared.task_name.clone());
    spec.cron_expression = Some(cron.to_owned());
    if let Some(description) = &declared.description {
        spec.description = description.clone();
    }
    if let Some(timezone) = &declared.timezone {
        spec.timezone = timezone.clone();
    }
    if let Some(mode) = declared.execution_mode {
        spec.execution_mode = mode;
    }
    if let Some(strategy) = &declared.load_balance_strategy {
        spec.load_balance_strategy = strategy.clone();
    }
    if let Some(max_retry) = declared.max_retry {
        spec.max_retry = max_retry;
    }
    spec.retry_backoff = declared.retry_backoff;
    if let Some(timeout) = declared.timeout {
        spec.timeout_seconds = timeout;
    }
    if let Some(policy) = declared.misfire_policy {
        spec.misfire_policy = policy;
    }
    if let Some(parameters) = &declared.parameters {
        spec.parameters = parameters.clone();
    }
    Ok(spec)
}
