//! The planner: the leader's loop that turns cron schedules into written fires.
//!
//! It keeps a heap of each task's next fire, sleeps until the earliest one is within the look-ahead
//! (or a task changes), then writes every due fire and advances each task's `next_fire_at` in one
//! transaction per batch, carrying the leader epoch.
//! Only fires that were written are dispatched, each at its instant.
//! The heap is a cache: everything it holds is in the database, and a new leader rebuilds it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use jobs_cron::Schedule;
use jobs_model::{Execution, ExecutionId, ExecutionMode, ExecutionStatus, Task, TaskId, Timestamp, TriggerType};
use jobs_storage::PlannedFire;

use crate::Engine;

/// How long before its instant a fire is written, so that dispatch happens on the instant.
const LOOK_AHEAD_MS: i64 = 500;
/// Fires written per transaction.
const BATCH: usize = 500;
/// Most slots one task may produce in one pass (a long outage of a fast schedule).
const MAX_SLOTS: usize = 1000;
/// Tasks read per query when leadership starts, so that loading 100,000 holds only one page of rows at a time.
const LOAD_PAGE: u64 = 5_000;
/// Pending executions recovered per query when leadership starts.
const RECOVERY_BATCH: u64 = 1000;
/// A task whose slots come at most this far apart keeps its row and parsed schedule between fires; others are read
/// and parsed again when due (a parsed schedule alone holds several kilobytes: 100,000 daily tasks cannot all keep
/// theirs, and need not).
const KEEP_SCHEDULE_MS: i64 = 60_000;
/// How often the leader looks for tasks changed and triggers written through other instances.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How far back each poll looks again, for late commits and clock differences between instances: a change
/// written by an instance whose clock is further behind the leader's than this is not seen until the next election.
const POLL_SLACK_MS: i64 = 10_000;

/// Something the planner must look at again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PlannerEvent {
    TaskChanged(TaskId),
    /// A pending execution was written and should go out now.
    Pending,
    /// An execution of this task ended: a waiting fire of a sequential task may start.
    Finished(TaskId),
}

/// One planned task: a few words, plus the task itself while it is due or fires often.
struct Entry {
    id: TaskId,
    /// The task's `updated_at` when planned: a task read when due with another one has changed since.
    updated_at: Timestamp,
    mode: ExecutionMode,
    /// The task and its parsed schedule: read when due, kept only for frequent tasks (see [`KEEP_SCHEDULE_MS`]).
    /// Boxed: a parsed schedule is hundreds of bytes inline, which 100,000 entries should not all reserve.
    loaded: Option<Box<(Arc<Task>, Schedule)>>,
    /// The slot the task is due at.
    next: Timestamp,
    /// What `tasks.next_fire_at` holds, the guard of the next write.
    stored: Option<Timestamp>,
    generation: u64,
}

pub(crate) struct Planner {
    engine: Arc<Engine>,
    epoch: i64,
    entries: HashMap<TaskId, Entry>,
    heap: BinaryHeap<Reverse<(Timestamp, u64, TaskId)>>,
    generation: u64,
    /// This instance's clock at the start of the last successful change poll (or load).
    watermark: Timestamp,
    /// Versions the change poll already handled that are still in its look-back window (tasks it does not plan,
    /// such as paused ones, included).
    polled: HashMap<TaskId, Timestamp>,
}

impl Planner {
    pub(crate) fn new(engine: Arc<Engine>, epoch: i64) -> Self {
        Self {
            engine,
            epoch,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            generation: 0,
            watermark: Timestamp::now(),
            polled: HashMap::new(),
        }
    }

    #[tracing::instrument(skip_all, fields(epoch = self.epoch))]
    pub(crate) async fn run(mut self, events: &mut mpsc::UnboundedReceiver<PlannerEvent>) {
        while events.try_recv().is_ok() {}
        while let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load tasks; retrying");
            self.engine.metrics.database_error();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        self.recover_pending().await;
        tracing::info!(tasks = self.entries.len(), "planner started");
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.heap.peek().map(|Reverse((at, _, _))| at.add_millis(-LOOK_AHEAD_MS));
            let sleep = async {
                match wake {
                    Some(at) => {
                        let wait = at.millis_since(Timestamp::now());
                        if wait > 0 {
                            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.handle(event, events).await,
                    None => return,
                },
                () = sleep => self.plan_due().await,
                _ = poll.tick() => self.poll_changes().await,
            }
        }
    }

    async fn load(&mut self) -> jobs_storage::Result<()> {
        self.entries.clear();
        self.heap.clear();
        self.watermark = Timestamp::now();
        self.polled.clear();
        let mut after = None;
        loop {
            let page = self.engine.store.schedulable_tasks_after(after, LOAD_PAGE).await?;
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

    /// Picks up what other instances wrote: changed tasks and manual triggers.
    async fn poll_changes(&mut self) {
        let started = Timestamp::now();
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
                self.engine.metrics.database_error();
            }
        }
        self.recover_pending().await;
        self.engine.sweep().await;
    }

    /// The tasks written since `since` in a version this planner has not seen: ids and versions first, whole rows
    /// only for what changed (a bulk import stays in the look-back window for a while).
    async fn changed_tasks(&mut self, since: Timestamp) -> jobs_storage::Result<Vec<Task>> {
        let versions = self.engine.store.task_versions_since(since).await?;
        self.polled.retain(|_, updated_at| *updated_at >= since);
        let changed: Vec<(TaskId, Timestamp)> = versions
            .into_iter()
            .filter(|(id, updated_at)| {
                let planned = self.entries.get(id).map(|entry| entry.updated_at);
                planned != Some(*updated_at) && self.polled.get(id) != Some(updated_at)
            })
            .collect();
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TaskId> = changed.iter().map(|(id, _)| *id).collect();
        let tasks = self.engine.store.get_tasks(&ids).await?;
        self.polled.extend(changed);
        Ok(tasks)
    }

    /// Handles `event` and every event queued behind it, each task reloaded once and pending work looked
    /// at once however many callbacks asked for it.
    async fn handle(&mut self, event: PlannerEvent, events: &mut mpsc::UnboundedReceiver<PlannerEvent>) {
        let mut changed = std::collections::HashSet::new();
        let mut pending = false;
        let mut next = Some(event);
        while let Some(event) = next {
            match event {
                PlannerEvent::TaskChanged(id) => {
                    changed.insert(id);
                }
                PlannerEvent::Pending => pending = true,
                PlannerEvent::Finished(id) => {
                    // Cron tasks are known here; only a sequential one (or one not planned here) has fires waiting.
                    let mode = self.entries.get(&id).map(|entry| entry.mode);
                    pending |= mode.is_none_or(|mode| mode == ExecutionMode::Sequential);
                }
            }
            next = events.try_recv().ok();
        }
        for id in changed {
            self.reload(id).await;
        }
        if pending {
            self.recover_pending().await;
        }
    }

    /// Plans a task again from its row; false (and the plan unchanged) if the row cannot be read.
    async fn reload(&mut self, id: TaskId) -> bool {
        match self.engine.store.get_task(id).await {
            Ok(Some(task)) => self.insert(task),
            Ok(None) => {
                self.entries.remove(&id);
            }
            Err(error) => {
                tracing::error!(task_id = %id, %error, "cannot reload task");
                self.engine.metrics.database_error();
                return false;
            }
        }
        true
    }

    /// Puts a task (back) into the plan, or drops it when it has nothing to fire.
    fn insert(&mut self, task: Task) {
        self.entries.remove(&task.id);
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
                Some(schedule) => match schedule.next_after(Timestamp::now()) {
                    Some(next) => next,
                    None => return,
                },
                None => return,
            },
        };
        self.push(Entry {
            id: task.id,
            updated_at: task.updated_at,
            mode: task.spec.execution_mode,
            loaded: None,
            next,
            stored,
            generation: 0,
        });
    }

    fn push(&mut self, mut entry: Entry) {
        self.generation += 1;
        entry.generation = self.generation;
        self.heap.push(Reverse((entry.next, entry.generation, entry.id)));
        self.entries.insert(entry.id, entry);
    }

    /// Writes every fire due within the look-ahead, then dispatches what was written.
    async fn plan_due(&mut self) {
        let now = Timestamp::now();
        let horizon = now.add_millis(LOOK_AHEAD_MS);
        let mut due = Vec::new();
        while let Some(Reverse((at, generation, id))) = self.heap.peek().copied() {
            if at > horizon {
                break;
            }
            self.heap.pop();
            if self.entries.get(&id).is_some_and(|entry| entry.generation == generation)
                && let Some(entry) = self.entries.remove(&id)
            {
                due.push(entry);
            }
        }
        let Some(due) = self.load_due(due).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        };
        let grace = self.engine.config.misfire_grace.get().as_millis() as i64;
        let mut failed = false;
        let mut chunk = Vec::with_capacity(BATCH.min(due.len()));
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            chunk.clear();
            chunk.extend(due.by_ref().take(BATCH));
            let fires: Vec<PlannedFire> = chunk.iter().map(|entry| planned_fire(entry, now, horizon, grace)).collect();
            if failed {
                self.retry_later(chunk.drain(..));
                continue;
            }
            match self.engine.store.record_fires(Some(self.epoch), &self.engine.lock_key, &fires).await {
                Ok(inserted) => self.after_write(&mut chunk, fires, &inserted).await,
                Err(error) if error.kind() == jobs_model::ErrorKind::Conflict => {
                    tracing::warn!(%error, "deposed: this instance no longer leads; planning stops");
                    self.entries.clear();
                    self.heap.clear();
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, fires = fires.len(), "cannot write fires; retrying in a second");
                    self.engine.metrics.database_error();
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
        let mut tasks: HashMap<TaskId, Task> = match self.engine.store.get_tasks(&missing).await {
            Ok(tasks) => tasks.into_iter().map(|task| (task.id, task)).collect(),
            Err(error) => {
                tracing::error!(%error, tasks = missing.len(), "cannot read due tasks; retrying in a second");
                self.engine.metrics.database_error();
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
            self.push(entry);
        }
    }

    /// Dispatches the fires that were written and moves each task to its next slot.
    async fn after_write(&mut self, chunk: &mut Vec<Entry>, fires: Vec<PlannedFire>, inserted: &[ExecutionId]) {
        let inserted: std::collections::HashSet<&ExecutionId> = inserted.iter().collect();
        for (mut entry, fire) in chunk.drain(..).zip(fires) {
            let written: Vec<Execution> =
                fire.executions.into_iter().filter(|execution| inserted.contains(&execution.id)).collect();
            if written.is_empty() {
                // Someone else changed the task (or wrote these slots): take the database's word for it, or keep
                // the entry as it was if the database cannot be read now.
                if !self.reload(entry.id).await {
                    self.push(entry);
                }
                continue;
            }
            let Some(loaded) = &entry.loaded else { continue };
            let task = loaded.0.clone();
            for execution in written {
                if execution.status == ExecutionStatus::Pending {
                    self.engine.metrics.fired(TriggerType::Cron, 1);
                    self.engine.dispatcher.dispatch_at(execution, task.clone());
                } else {
                    tracing::info!(task_id = %entry.id, slot = %execution.scheduled_at, "misfire skipped");
                    self.engine.metrics.finished(ExecutionStatus::Missed);
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
            self.push(entry);
        }
    }

    /// Dispatches pending executions that are due: left by a leader that died between writing and sending,
    /// triggered through another instance, retries whose backoff passed, and sequential fires whose turn came.
    async fn recover_pending(&mut self) {
        let due = Timestamp::now().add_millis(LOOK_AHEAD_MS * 2);
        match self.engine.store.pending_due(due, RECOVERY_BATCH).await {
            Ok(pending) => self.dispatch_pending(pending).await,
            Err(error) => {
                tracing::error!(%error, "cannot read pending executions");
                self.engine.metrics.database_error();
            }
        }
    }

    async fn dispatch_pending(&mut self, pending: Vec<Execution>) {
        // Tasks the plan does not hold are read in one query; if that fails, everything stays pending for the next
        // pass (a read error must not pass for a deleted task).
        let mut tasks: HashMap<TaskId, Arc<Task>> = HashMap::new();
        let mut missing: Vec<TaskId> = Vec::new();
        for execution in &pending {
            match self.entries.get(&execution.task_id) {
                Some(Entry { loaded: Some(loaded), .. }) => {
                    tasks.insert(execution.task_id, loaded.0.clone());
                }
                _ => missing.push(execution.task_id),
            }
        }
        let mut seen = HashSet::new();
        missing.retain(|id| !tasks.contains_key(id) && seen.insert(*id));
        if !missing.is_empty() {
            match self.engine.store.get_tasks(&missing).await {
                Ok(found) => tasks.extend(found.into_iter().map(|task| (task.id, Arc::new(task)))),
                Err(error) => {
                    tracing::warn!(%error, "cannot read the tasks of pending executions; they wait for the next pass");
                    self.engine.metrics.database_error();
                    return;
                }
            }
        }
        // Only the oldest waiting fire of a sequential task can start; the others keep their place.
        let mut sequential_started = HashSet::new();
        for execution in pending {
            let task = tasks.get(&execution.task_id).cloned();
            if let Some(task) = &task
                && task.spec.execution_mode == ExecutionMode::Sequential
                && !sequential_started.insert(task.id)
            {
                continue;
            }
            match task {
                Some(task) => self.engine.dispatcher.dispatch_at(execution, task),
                None => {
                    let error = "task was deleted before the execution was dispatched";
                    let now = Timestamp::now();
                    let failed = self.engine.store.finish_execution(
                        execution.id,
                        ExecutionStatus::Failed,
                        None,
                        Some(error),
                        now,
                    );
                    if let Err(error) = failed.await {
                        tracing::error!(execution_id = %execution.id, %error, "cannot fail an orphaned execution");
                    }
                }
            }
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
    let plan = jobs_cron::plan(schedule, entry.next, now, horizon, grace_ms, task.spec.misfire_policy, MAX_SLOTS);
    let execution = |slot: Timestamp, status: ExecutionStatus| Execution {
        id: ExecutionId::new(),
        task_id: task.id,
        task_name: task.spec.name.clone(),
        trigger_type: TriggerType::Cron,
        status,
        scheduled_at: slot,
        parameters: task.spec.parameters.clone(),
        executor_id: None,
        attempt: 0,
        retries: 0,
        retry_at: None,
        deadline_at: None,
        created_at: now,
        started_at: None,
        finished_at: (status == ExecutionStatus::Missed).then_some(now),
        result: None,
        error: (status == ExecutionStatus::Missed)
            .then(|| "misfire: slot skipped by the task's misfire policy".to_owned()),
    };
    let mut executions: Vec<Execution> =
        plan.missed.iter().map(|slot| execution(*slot, ExecutionStatus::Missed)).collect();
    executions.extend(plan.fires.iter().map(|slot| execution(*slot, ExecutionStatus::Pending)));
    PlannedFire { task_id: task.id, expected_next: entry.stored, new_next: plan.next, executions }
}
