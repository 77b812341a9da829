//! The planner: the leader's loop that turns cron schedules into written fires.
//!
//! It keeps a heap of each task's next fire, sleeps until the earliest one is within the look-ahead
//! (or a task changes), then writes every due fire and advances each task's `next_fire_at` in one
//! transaction per batch, carrying the leader epoch.
//! Only fires that were written are dispatched, each at its instant.
//! The heap is a cache: everything it holds is in the database, and a new leader rebuilds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jobs_cron::Schedule;
use jobs_model::{Execution, ExecutionId, ExecutionStatus, Task, TaskId, Timestamp, TriggerType};
use jobs_storage::{PlannedFire, Store};

use crate::clock::Clock;
use crate::dispatcher::Dispatcher;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::plan::{Entry, Plan};
use crate::settle::Settler;

/// How long before its send time a fire is written, so that its request goes out on time (a fire sent early to an
/// instance that asked for it is written earlier by as much: see [`Planner::look_ahead_ms`]).
const LOOK_AHEAD_MS: i64 = 500;
/// Fires written per transaction.
const BATCH: usize = 500;
/// Most slots one task may produce in one pass (a long outage of a fast schedule).
const MAX_SLOTS: usize = 1000;
/// Tasks read per query when leadership starts, so that loading 100,000 holds only one page of rows at a time.
const LOAD_PAGE: u64 = 5_000;
/// A task whose slots come at most this far apart keeps its row and parsed schedule between fires; others are read
/// and parsed again when due (a parsed schedule alone holds several kilobytes: 100,000 daily tasks cannot all keep
/// theirs, and need not).
const KEEP_SCHEDULE_MS: i64 = 60_000;
/// How often the leader looks for tasks changed through other instances.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How far back each poll looks again, for late commits and clock differences between instances: a change
/// written by an instance whose clock is further behind the leader's than this is not seen until the next election.
const POLL_SLACK_MS: i64 = 10_000;

/// What the planner works with, and nothing else.
pub(crate) struct PlannerParts {
    pub(crate) store: Store,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) settler: Arc<Settler>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Tasks changed through this instance.
    pub(crate) changes: Arc<Mailbox<TaskId>>,
    /// The election's lock key and this leadership's epoch, which every planning write carries.
    pub(crate) lock_key: String,
    pub(crate) epoch: i64,
    /// Slots later than this are misfires.
    pub(crate) misfire_grace_ms: i64,
}

pub(crate) struct Planner {
    parts: PlannerParts,
    plan: Plan,
    /// This instance's clock at the start of the last successful change poll (or load).
    watermark: Timestamp,
    /// Versions the change poll already handled that are still in its look-back window (tasks it does not plan,
    /// such as paused ones, included).
    polled: HashMap<TaskId, Timestamp>,
}

impl Planner {
    pub(crate) fn new(parts: PlannerParts) -> Self {
        let watermark = parts.clock.now();
        Self { parts, plan: Plan::default(), watermark, polled: HashMap::new() }
    }

    #[tracing::instrument(name = "planning", skip_all, fields(epoch = self.parts.epoch))]
    pub(crate) async fn run(mut self) {
        while let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load tasks; retrying");
            self.parts.metrics.database_error();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!(tasks = self.plan.len(), "planner started");
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let changes = self.parts.changes.clone();
        loop {
            let wake = self.plan.earliest().map(|at| at.add_millis(-self.look_ahead_ms()));
            let clock = self.parts.clock.clone();
            let sleep = async move {
                match wake {
                    Some(at) => {
                        let wait = at.millis_since(clock.now());
                        if wait > 0 {
                            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.recv() => {
                    for id in changed {
                        self.reload(id).await;
                    }
                }
                () = sleep => self.plan_due().await,
                _ = poll.tick() => self.poll_changes().await,
            }
        }
    }

    async fn load(&mut self) -> jobs_storage::Result<()> {
        self.plan.clear();
        self.watermark = self.parts.clock.now();
        self.polled.clear();
        let mut after = None;
        loop {
            let page = self.parts.store.schedulable_tasks_after(after, LOAD_PAGE).await?;
            let full = page.len() as u64 == LOAD_PAGE;
            after = page.last().map(|task| task.id);
            for task in page {
                self.insert(task);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Picks up tasks changed through other instances.
    async fn poll_changes(&mut self) {
        let started = self.parts.clock.now();
        let since = self.watermark.add_millis(-POLL_SLACK_MS);
        match self.changed_tasks(since).await {
            Ok(tasks) => {
                // The next poll looks back from this one's start, not from the newest row seen: rows written long
                // ago are not fetched again and again (the slack covers late commits and clock differences).
                self.watermark = self.watermark.max(started);
                for task in tasks {
                    self.insert(task);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot poll for changed tasks");
                self.parts.metrics.database_error();
            }
        }
    }

    /// The tasks written since `since` in a version this planner has not seen: ids and versions first, whole rows
    /// only for what changed (a bulk import stays in the look-back window for a while).
    async fn changed_tasks(&mut self, since: Timestamp) -> jobs_storage::Result<Vec<Task>> {
        let versions = self.parts.store.task_versions_since(since).await?;
        self.polled.retain(|_, updated_at| *updated_at >= since);
        let changed: Vec<(TaskId, Timestamp)> = versions
            .into_iter()
            .filter(|(id, updated_at)| {
                let planned = self.plan.get(*id).map(|entry| entry.updated_at);
                planned != Some(*updated_at) && self.polled.get(id) != Some(updated_at)
            })
            .collect();
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TaskId> = changed.iter().map(|(id, _)| *id).collect();
        let tasks = self.parts.store.get_tasks(&ids).await?;
        self.polled.extend(changed);
        Ok(tasks)
    }

    /// Plans a task again from its row; false (and the plan unchanged) if the row cannot be read.
    async fn reload(&mut self, id: TaskId) -> bool {
        match self.parts.store.get_task(id).await {
            Ok(Some(task)) => self.insert(task),
            Ok(None) => {
                self.plan.remove(id);
            }
            Err(error) => {
                tracing::error!(task_id = %id, %error, "cannot reload task");
                self.parts.metrics.database_error();
                return false;
            }
        }
        true
    }

    /// Puts a task (back) into the plan, or drops it when it has nothing to fire.
    fn insert(&mut self, task: Task) {
        self.plan.remove(task.id);
        if !task.spec.enabled {
            return;
        }
        if task.spec.cron_expression.is_none() {
            return;
        }
        let stored = task.next_fire_at;
        let next = match stored {
            Some(next) => next,
            None => match parse_schedule(&task) {
                Some(schedule) => match schedule.next_after(self.parts.clock.now()) {
                    Some(next) => next,
                    None => return,
                },
                None => return,
            },
        };
        self.plan.push(Entry { id: task.id, updated_at: task.updated_at, loaded: None, next, stored, generation: 0 });
    }

    /// How long before its instant a fire is written: enough to claim it and still send it early.
    fn look_ahead_ms(&self) -> i64 {
        LOOK_AHEAD_MS + self.parts.dispatcher.early_delivery_ms()
    }

    /// Writes every fire due within the look-ahead, each claimed for its instance where it can be, then hands what
    /// was written to the dispatcher.
    async fn plan_due(&mut self) {
        let now = self.parts.clock.now();
        let horizon = now.add_millis(self.look_ahead_ms());
        let due = self.plan.take_due(horizon);
        let Some(due) = self.load_due(due).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        };
        let grace = self.parts.misfire_grace_ms;
        let mut failed = false;
        let mut chunk = Vec::with_capacity(BATCH.min(due.len()));
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            chunk.clear();
            chunk.extend(due.by_ref().take(BATCH));
            let mut fires: Vec<PlannedFire> =
                chunk.iter().map(|entry| planned_fire(entry, now, horizon, grace)).collect();
            for (entry, fire) in chunk.iter().zip(fires.iter_mut()) {
                if let Some((task, _)) = entry.loaded.as_deref() {
                    self.parts.dispatcher.preclaim(task, &mut fire.executions).await;
                }
            }
            if failed {
                self.retry_later(chunk.drain(..));
                continue;
            }
            match self.parts.store.record_fires(Some(self.parts.epoch), &self.parts.lock_key, &fires).await {
                Ok(inserted) => self.after_write(&mut chunk, fires, &inserted).await,
                Err(error) if error.kind() == jobs_model::ErrorKind::Conflict => {
                    tracing::warn!(%error, "deposed: this instance no longer leads; planning stops");
                    self.plan.clear();
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, fires = fires.len(), "cannot write fires; retrying in a second");
                    self.parts.metrics.database_error();
                    failed = true;
                    self.retry_later(chunk.drain(..));
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reads the tasks of due entries that do not hold theirs; a task deleted since is dropped, and one changed since
    /// is planned again from what it is now. `None` (entries put back) if the database cannot be read.
    async fn load_due(&mut self, due: Vec<Entry>) -> Option<Vec<Entry>> {
        let missing: Vec<TaskId> = due.iter().filter(|entry| entry.loaded.is_none()).map(|entry| entry.id).collect();
        if missing.is_empty() {
            return Some(due);
        }
        let mut tasks: HashMap<TaskId, Task> = match self.parts.store.get_tasks(&missing).await {
            Ok(tasks) => tasks.into_iter().map(|task| (task.id, task)).collect(),
            Err(error) => {
                tracing::error!(%error, tasks = missing.len(), "cannot read due tasks; retrying in a second");
                self.parts.metrics.database_error();
                self.retry_later(due.into_iter());
                return None;
            }
        };
        let mut ready = Vec::with_capacity(due.len());
        for mut entry in due {
            if entry.loaded.is_none() {
                let Some(task) = tasks.remove(&entry.id) else { continue };
                if task.updated_at != entry.updated_at {
                    self.insert(task);
                    continue;
                }
                let Some(schedule) = parse_schedule(&task) else { continue };
                entry.loaded = Some(Box::new((Arc::new(task), schedule)));
            }
            ready.push(entry);
        }
        Some(ready)
    }

    /// Puts entries back unchanged, to be planned again.
    fn retry_later(&mut self, entries: impl Iterator<Item = Entry>) {
        for entry in entries {
            self.plan.push(entry);
        }
    }

    /// Dispatches the fires that were written and moves each task to its next slot.
    async fn after_write(&mut self, chunk: &mut Vec<Entry>, fires: Vec<PlannedFire>, inserted: &[ExecutionId]) {
        let inserted: HashSet<&ExecutionId> = inserted.iter().collect();
        for (mut entry, fire) in chunk.drain(..).zip(fires) {
            let written: Vec<Execution> =
                fire.executions.into_iter().filter(|execution| inserted.contains(&execution.id)).collect();
            if written.is_empty() {
                // Someone else changed the task (or wrote these slots): take the database's word for it, or keep
                // the entry as it was if the database cannot be read now.
                if !self.reload(entry.id).await {
                    self.plan.push(entry);
                }
                continue;
            }
            let Some(loaded) = &entry.loaded else { continue };
            let task = loaded.0.clone();
            for execution in written {
                if execution.missed_slots > 0 {
                    tracing::info!(task_id = %entry.id, slot = %execution.scheduled_at, missed = execution.missed_slots, "misfired slots recorded as missed");
                    self.parts.settler.recorded(ExecutionStatus::Missed, u64::from(execution.missed_slots));
                }
                if execution.status == ExecutionStatus::Pending {
                    self.parts.metrics.fired(TriggerType::Cron, 1);
                    self.parts.dispatcher.dispatch_at(execution, task.clone());
                } else {
                    tracing::info!(task_id = %entry.id, slot = %execution.scheduled_at, "misfire skipped");
                    self.parts.settler.recorded(ExecutionStatus::Missed, 1);
                }
            }
            let Some(next) = fire.new_next else {
                continue;
            };
            if next.millis_since(entry.next) > KEEP_SCHEDULE_MS {
                entry.loaded = None;
            }
            entry.next = next;
            entry.stored = Some(next);
            self.plan.push(entry);
        }
    }
}

/// A task's schedule, parsed from its stored expression; `None` (and an error logged) if it has none or it does
/// not parse, which leaves the task unplanned.
fn parse_schedule(task: &Task) -> Option<Schedule> {
    let expression = task.spec.cron_expression.as_deref()?;
    match Schedule::parse(expression, &task.spec.timezone) {
        Ok(schedule) => Some(schedule),
        Err(error) => {
            tracing::error!(task_id = %task.id, %error, "stored task has an unusable schedule; not planned");
            None
        }
    }
}

/// The executions a due task produces now, and the move of its `next_fire_at`.
fn planned_fire(entry: &Entry, now: Timestamp, horizon: Timestamp, grace_ms: i64) -> PlannedFire {
    let Some((task, schedule)) = entry.loaded.as_deref() else {
        // Not parsed (the due pass parses every entry it keeps): nothing is written and the task is reloaded.
        return PlannedFire {
            task_id: entry.id,
            expected_next: entry.stored,
            new_next: entry.stored,
            executions: Vec::new(),
        };
    };
    let mut plan = jobs_cron::plan(schedule, entry.next, now, horizon, grace_ms, task.spec.misfire_policy, MAX_SLOTS);
    let capped = match task.spec.max_catchup {
        Some(max) => plan.cap_late(now, usize::try_from(max).unwrap_or(usize::MAX)),
        None => Vec::new(),
    };
    let execution = |slot: Timestamp, missed: Option<&str>| {
        let mut execution = Execution::pending(task, TriggerType::Cron, slot, task.spec.parameters.clone(), now);
        if let Some(reason) = missed {
            execution.status = ExecutionStatus::Missed;
            execution.finished_at = Some(now);
            execution.error = Some(reason.to_owned());
        }
        execution
    };
    let by_policy = "misfire: slot skipped by the task's misfire policy";
    let by_cap = format!(
        "missed: catch-up capped by the task's max_catchup (the newest {} late slots fired)",
        task.spec.max_catchup.unwrap_or_default()
    );
    let mut executions: Vec<Execution> = plan.missed.iter().map(|slot| execution(*slot, Some(by_policy))).collect();
    executions.extend(capped.iter().map(|slot| execution(*slot, Some(&by_cap))));
    executions.extend(plan.fires.iter().map(|slot| execution(*slot, None)));
    // The slots folded into a catch-up fire, or dropped by a long outage, are recorded with the plan's first
    // execution (the catch-up fire itself under `fire_once`), so that the history explains every slot.
    if let Some(first) = executions.first_mut() {
        first.missed_slots = u32::try_from(plan.folded).unwrap_or(u32::MAX);
    }
    PlannedFire { task_id: task.id, expected_next: entry.stored, new_next: plan.next, executions }
}
