//! The dispatcher: applies the task's execution mode, then hands the execution to one instance chosen by
//! the task's strategy.
//!
//! Each attempt is claimed in the database before the request goes out (at most once per attempt). A cron fire of
//! a `parallel` task is claimed when the planner writes it, ahead of its instant ([`Dispatcher::preclaim`]), so that
//! at the instant nothing stands between the fire and its request; other deliveries claim their attempt right
//! before sending. A busy or unreachable instance is passed over for the next candidate; only when none takes the
//! execution does the attempt fail, with the reasons, and the task's retries apply.
//!
//! An instance that registered `early_delivery_ms` gets its claimed fires up to that long (at most
//! `scheduler.early_delivery`) before their instant, and starts them at the instant by its own clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use jobs_balance::{Candidate, Manager, Strategy};
use jobs_election::Lease;
use jobs_model::protocol::{DispatchRequest, Shard};
use jobs_model::{
    AttemptStatus, Execution, ExecutionId, ExecutionMode, ExecutionStatus, Executor, ExecutorId, Task, TaskId,
    Timestamp, TriggerType,
};
use jobs_registry::{HealthChecker, Probe, Registry};
use jobs_storage::Store;

use crate::ExecutorClient;
use crate::admission::{Admission, admit};
use crate::clock::Clock;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::queue::Wake;
use crate::sent::{Sent, SentAttempt};
use crate::settle::Settler;
use crate::writer::Writer;

#[cfg(test)]
mod tests;

/// What splitting a broadcast fire came to.
enum Split {
    /// The first shard, to send now; the others are on their way.
    Shards(Box<Execution>),
    /// No instance can take it: it is sent as it is, and fails with the reason.
    NoInstance,
    /// It was split or started elsewhere, or its task is gone.
    Gone,
}

/// The workers first deliveries of cron fires may take: all but an eighth, kept for retries, manual triggers
/// and chained runs (no reserve below 8 workers).
pub(crate) fn cron_workers(max_workers: usize) -> usize {
    max_workers - max_workers / 8
}

/// Whether a task's fires run on every instance.
fn is_broadcast(task: &Task) -> bool {
    task.spec.load_balance_strategy == jobs_balance::BROADCAST
}

#[derive(Debug)]
pub(crate) struct Dispatcher {
    store: Store,
    writer: Writer,
    registry: Arc<Registry>,
    strategies: Arc<Manager>,
    client: Arc<dyn ExecutorClient>,
    lease: Lease,
    settler: Arc<Settler>,
    queue: Arc<Mailbox<Wake>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    health: Option<HealthChecker>,
    /// Bounds the dispatch requests in flight (`scheduler.max_workers`).
    permits: Arc<Semaphore>,
    /// Bounds the first deliveries of cron fires to all workers but a reserved share, so that retries, manual
    /// triggers and chained runs are never starved by a burst of cron fires.
    cron_permits: Arc<Semaphore>,
    max_workers: usize,
    /// The most a fire is sent ahead of its instant (`scheduler.early_delivery`).
    early_delivery_ms: i64,
    /// How long past its instant a cron fire may wait for a free slot before it is missed (`scheduler.max_lateness`).
    max_lateness_ms: i64,
    callback_base: String,
    /// Attempts this instance sent and has not seen end.
    sent: Arc<Sent>,
    /// Executions queued or being sent by this instance, so that a recovery pass never sends one twice.
    in_flight: Mutex<HashSet<ExecutionId>>,
    /// One lock per task with a mode other than parallel: the look at what runs and the claim are one step.
    task_locks: Mutex<HashMap<TaskId, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) struct DispatcherParts {
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) registry: Arc<Registry>,
    pub(crate) strategies: Arc<Manager>,
    pub(crate) client: Arc<dyn ExecutorClient>,
    pub(crate) lease: Lease,
    pub(crate) settler: Arc<Settler>,
    pub(crate) queue: Arc<Mailbox<Wake>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Option<HealthChecker>,
    pub(crate) max_workers: usize,
    pub(crate) early_delivery_ms: i64,
    pub(crate) max_lateness_ms: i64,
    pub(crate) callback_base: String,
    pub(crate) sent: Arc<Sent>,
}

impl Dispatcher {
    pub(crate) fn new(parts: DispatcherParts) -> Self {
        Self {
            store: parts.store,
            writer: parts.writer,
            registry: parts.registry,
            strategies: parts.strategies,
            client: parts.client,
            lease: parts.lease,
            settler: parts.settler,
            queue: parts.queue,
            clock: parts.clock,
            metrics: parts.metrics,
            health: parts.health,
            permits: Arc::new(Semaphore::new(parts.max_workers)),
            cron_permits: Arc::new(Semaphore::new(cron_workers(parts.max_workers))),
            max_workers: parts.max_workers,
            early_delivery_ms: parts.early_delivery_ms,
            max_lateness_ms: parts.max_lateness_ms,
            callback_base: parts.callback_base,
            sent: parts.sent,
            in_flight: Mutex::default(),
            task_locks: Mutex::default(),
        }
    }

    /// Executions this instance holds to send or is sending (the dispatch queue's depth).
    pub(crate) fn queued(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Dispatches in the background, as soon as a worker is free.
    pub(crate) fn dispatch_now(self: &Arc<Self>, execution: Execution, task: Arc<Task>) {
        if !self.claim(&execution) {
            return;
        }
        let dispatcher = self.clone();
        tokio::spawn(async move { dispatcher.dispatch(execution, &task).await });
    }

    /// How far ahead of its instant the fire of a task is sent, and so written: the look-ahead the planner needs.
    pub(crate) fn early_delivery_ms(&self) -> i64 {
        self.early_delivery_ms
    }

    /// Claims the first attempt of each of a `parallel` task's new fires for the instance its strategy picks, before
    /// they are written: the rows then hold everything their send needs. Fires of other modes, and fires with no
    /// instance to take them now, are left unclaimed and go through admission and the strategy at their instant.
    pub(crate) async fn preclaim(&self, task: &Task, executions: &mut [Execution]) {
        // A broadcast fire is split into its shards at its instant, when the instances are known.
        if task.spec.execution_mode != ExecutionMode::Parallel || is_broadcast(task) {
            return;
        }
        let Ok(strategy) = self.strategies.get(&task.spec.load_balance_strategy) else { return };
        let candidates = match self.registry.candidates(&task.spec.name, task.spec.executor.as_deref()).await {
            Ok(candidates) if !candidates.is_empty() => candidates,
            _ => return,
        };
        let mut choices: Vec<Candidate> = candidates
            .iter()
            .map(|(executor, running)| Candidate { id: executor.id, weight: executor.weight, running: *running })
            .collect();
        let now = self.clock.now();
        let timeout_ms = i64::from(task.spec.timeout_seconds) * 1000;
        for execution in executions.iter_mut().filter(|execution| execution.status == ExecutionStatus::Pending) {
            let Some(index) = strategy.pick(task.id, &choices) else { return };
            // What this batch assigned counts, so that `least_loaded` does not give one instance the whole batch.
            choices[index].running += 1;
            let executor = &candidates[index].0;
            let lead = i64::try_from(executor.early_delivery_ms).unwrap_or(i64::MAX).min(self.early_delivery_ms);
            execution.executor_id = Some(executor.id);
            execution.attempt = 1;
            execution.started_at = Some(execution.scheduled_at.add_millis(-lead));
            execution.deadline_at = Some(execution.scheduled_at.max(now).add_millis(timeout_ms));
        }
    }

    /// Whether this instance is sending `execution`, has sent it and not seen it end, or (a claimed fire) handled
    /// it already: a read of its row made before its end was written must not send it again.
    pub(crate) fn owns(&self, execution: &Execution) -> bool {
        let id = execution.id;
        (execution.is_preclaimed() && self.sent.handled(id))
            || self.sent.contains(id)
            || self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&id)
    }

    /// Whether a fire claimed by an earlier leader can be sent without running twice: its instance ignores an
    /// execution it already took (it registered early delivery, whose contract says so), or its send time is
    /// later than this leadership's start by more than instances' clocks may differ, so the earlier leader, whose
    /// lease ended before this one began, cannot have sent it.
    pub(crate) async fn may_resend(&self, execution: &Execution, took_over_at: Timestamp) -> bool {
        let deduplicates = match execution.executor_id {
            Some(id) => self.registry.instance(id).await.is_some_and(|executor| executor.early_delivery_ms > 0),
            None => false,
        };
        let send_at = execution.started_at.unwrap_or(execution.scheduled_at);
        deduplicates || send_at.millis_since(took_over_at) > CLOCK_MARGIN_MS
    }

    /// Dispatches in the background when it is due: a claimed fire at its send time, any other at
    /// `execution.scheduled_at` (or its `retry_at`, if later).
    pub(crate) fn dispatch_at(self: &Arc<Self>, execution: Execution, task: Arc<Task>) {
        if !self.claim(&execution) {
            return;
        }
        let dispatcher = self.clone();
        tokio::spawn(async move {
            let wait = send_at(&execution).millis_since(dispatcher.clock.now());
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
            }
            dispatcher.dispatch(execution, &task).await;
        });
    }

    /// Waits (bounded) for the dispatch requests in flight to finish.
    pub(crate) async fn drain(&self) {
        let all = u32::try_from(self.max_workers).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.permits.acquire_many(all)).await;
    }

    /// Marks an execution as handled by this instance; false if it already is, was sent and has not ended, or is a
    /// claimed fire this instance handled before. (Other executions claim their attempt in the database, which
    /// refuses a second claim of the same attempt; a claimed fire's attempt is claimed in its row already.)
    fn claim(&self, execution: &Execution) -> bool {
        let id = execution.id;
        let handled = (execution.is_preclaimed() && self.sent.handled(id)) || self.sent.contains(id);
        !handled && self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id)
    }

    fn task_lock(&self, task: TaskId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.task_locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(task).or_default().clone()
    }

    #[tracing::instrument(skip_all, fields(execution_id = %execution.id, task = %task.spec.name))]
    async fn dispatch(self: &Arc<Self>, execution: Execution, task: &Task) {
        if let Err(error) = self.admit_and_send(&execution, task).await {
            // The row stays pending or running; a later pass or the next leader settles it.
            tracing::error!(%error, "dispatch could not be recorded");
            self.metrics.database_error();
        }
        if execution.is_preclaimed() {
            // Whatever became of it, this leader never sends this claim again.
            self.sent.retire(execution.id, self.clock.now());
        }
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&execution.id);
    }

    /// Applies the task's mode, then sends.
    ///
    /// A task whose mode orders its fires holds its own lock from the look at what runs until its send is over,
    /// and only then asks for a worker: fires of a task whose executor does not answer wait for that task's lock,
    /// never for a worker, so they delay only that task.
    async fn admit_and_send(self: &Arc<Self>, execution: &Execution, task: &Task) -> Result<(), jobs_storage::Error> {
        if !self.lease.is_valid() {
            tracing::warn!("leader lease lapsed; not dispatching");
            return Ok(());
        }
        let lock = (task.spec.execution_mode != ExecutionMode::Parallel).then(|| self.task_lock(task.id));
        let _guard = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        // A retry already holds its task (admission counted it as running while it waited).
        // A claimed fire is of a `parallel` task, which admits every fire.
        let first_delivery = execution.attempt == 0 && execution.retries == 0;
        if first_delivery && task.spec.execution_mode != ExecutionMode::Parallel {
            let open = self.store.open_executions_of_task(task.id).await?;
            match admit(task.spec.execution_mode, &task.spec.name, execution, &open) {
                Admission::Send => {}
                Admission::Replace(ids) => {
                    for other in open.iter().filter(|other| ids.contains(&other.id)) {
                        let reason = format!("cancelled: replaced by execution {}", execution.id);
                        self.settler.cancel(other, &reason).await?;
                    }
                }
                Admission::Wait => {
                    tracing::debug!("sequential fire waits for the execution before it");
                    self.queue.post(Wake::Waiting(task.id));
                    return Ok(());
                }
                Admission::Skip(reason) => {
                    tracing::info!(%reason, "fire skipped");
                    self.settler.end(execution, None, ExecutionStatus::Skipped, None, Some(&reason)).await?;
                    return Ok(());
                }
            }
        }
        let split;
        // Not yet sent to any instance (a fire that found none and waits for its retry is split when it goes).
        let execution = if execution.attempt == 0 && execution.shard.is_none() && is_broadcast(task) {
            match self.split(execution, task).await? {
                Split::Shards(first) => {
                    split = first;
                    &*split
                }
                Split::NoInstance => execution,
                Split::Gone => return Ok(()),
            }
        } else {
            execution
        };
        if !self.wait_for_room(execution, task).await? {
            return Ok(());
        }
        let sheddable = execution.trigger_type == TriggerType::Cron && execution.retries == 0;
        let waiting_since = self.clock.now();
        // A cron fire waits at most `scheduler.max_lateness` for its workers, and is shed without taking one.
        let budget = Duration::from_millis(self.max_lateness_ms.unsigned_abs());
        let permits = async {
            let cron_permit = if sheddable { Some(self.cron_permits.acquire().await.ok()?) } else { None };
            Some((cron_permit, self.permits.acquire().await.ok()?))
        };
        let acquired = if sheddable { tokio::time::timeout(budget, permits).await.ok() } else { Some(permits.await) };
        let Some(acquired) = acquired else {
            let waited = self.clock.now().millis_since(waiting_since);
            // The dispatcher itself is the bottleneck: sending it now would only make every later fire later.
            let reason = format!(
                "overloaded: no dispatch worker was free for {waited} ms (scheduler.max_workers is {}, \
                 scheduler.max_lateness {} ms)",
                self.max_workers, self.max_lateness_ms
            );
            tracing::warn!(%reason, "fire shed");
            self.metrics.shed("overloaded");
            self.settler.end(execution, None, ExecutionStatus::Missed, None, Some(&reason)).await?;
            return Ok(());
        };
        // The semaphores are closed only when the dispatcher goes away.
        let Some(_permits) = acquired else { return Ok(()) };
        self.send(execution, task).await
    }

    /// Whether `executor`, running `running` executions by the registry's count, has a free slot: fewer in flight
    /// than the `max_concurrency` it registered (counting what this leader sent and has not seen end).
    fn has_room(&self, executor: &Executor, running: u32) -> bool {
        executor.max_concurrency.is_none_or(|max| running.max(self.sent.on(executor.id)) < max)
    }

    /// Holds the execution, without a worker, until an instance that can run it has a free slot (at once if one
    /// has, or if none declared a limit, or if there is none: the send then fails with the reason). A cron fire
    /// that would wait past `scheduler.max_lateness` is recorded `missed` (`overloaded`) instead; false then.
    async fn wait_for_room(&self, execution: &Execution, task: &Task) -> Result<bool, jobs_storage::Error> {
        // The hot path: a claimed fire whose instance has room is sent with no more than a look at the cache.
        if execution.is_preclaimed()
            && let Some(executor) = execution.executor_id.and_then(|id| self.registry.cached_candidate(id))
            && self.has_room(&executor, 0)
        {
            return Ok(true);
        }
        let sheddable = execution.trigger_type == TriggerType::Cron && execution.retries == 0;
        let mut held = false;
        loop {
            let candidates =
                self.registry.candidates(&task.spec.name, task.spec.executor.as_deref()).await.unwrap_or_default();
            if candidates.is_empty() || candidates.iter().any(|(executor, running)| self.has_room(executor, *running)) {
                if held {
                    tracing::debug!("a slot is free; sending");
                }
                return Ok(true);
            }
            let late = self.clock.now().millis_since(execution.scheduled_at);
            if sheddable && late > self.max_lateness_ms {
                let reason = format!(
                    "overloaded: every instance that can run task `{}` was at its max_concurrency until {late} ms \
                     past the fire's instant (scheduler.max_lateness is {} ms)",
                    task.spec.name, self.max_lateness_ms
                );
                tracing::warn!(%reason, "fire shed");
                self.metrics.shed("overloaded");
                self.settler.end(execution, None, ExecutionStatus::Missed, None, Some(&reason)).await?;
                return Ok(false);
            }
            if !held {
                held = true;
                tracing::debug!("every instance is at its max_concurrency; held for a free slot");
            }
            if !self.lease.is_valid() {
                return Ok(true);
            }
            self.sent.some_end(ROOM_RECHECK).await;
        }
    }

    /// Splits a broadcast fire into one execution per active, healthy instance that can run its task, ordered by
    /// instance id (shard i is instance i), and sends the other shards; returns the first shard, which is
    /// `execution` itself, to send now.
    async fn split(self: &Arc<Self>, execution: &Execution, task: &Task) -> Result<Split, jobs_storage::Error> {
        let mut candidates = match self.registry.candidates(&task.spec.name, task.spec.executor.as_deref()).await {
            Ok(candidates) if !candidates.is_empty() => candidates,
            // Sent as one execution, it fails for want of an instance, with the usual reason.
            _ => return Ok(Split::NoInstance),
        };
        candidates.sort_by(|(a, _), (b, _)| a.instance_id.cmp(&b.instance_id));
        let total = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
        let shards: Vec<Execution> = (0..total)
            .zip(&candidates)
            .map(|(index, (executor, _))| {
                let mut shard = execution.clone();
                if index > 0 {
                    shard.id = ExecutionId::new();
                    // The slots a catch-up fire stands for are counted once, with the fire's first shard.
                    shard.missed_slots = 0;
                }
                shard.fire_id = Some(execution.id);
                shard.shard = Some(Shard { index, total });
                shard.executor_id = Some(executor.id);
                shard
            })
            .collect();
        if !self.store.split_fire(&shards).await? {
            tracing::info!("fire already split, started or deleted; not sent");
            return Ok(Split::Gone);
        }
        tracing::debug!(total, "broadcast fire split into shards");
        let task = Arc::new(task.clone());
        let mut shards = shards.into_iter();
        let first = shards.next().expect("one shard per candidate, and there are candidates");
        for shard in shards {
            self.dispatch_now(shard, task.clone());
        }
        Ok(Split::Shards(Box::new(first)))
    }

    async fn send(&self, execution: &Execution, task: &Task) -> Result<(), jobs_storage::Error> {
        let mut reasons = Vec::new();
        let mut claimed_for = None;
        if execution.is_preclaimed() {
            if self.send_claimed(execution, task, &mut reasons).await? {
                return Ok(());
            }
            claimed_for = execution.executor_id;
        }
        let candidates = match self.registry.candidates(&task.spec.name, task.spec.executor.as_deref()).await {
            Ok(candidates) => candidates,
            Err(error) => {
                reasons.push(format!("executor registry unavailable: {error}"));
                Vec::new()
            }
        };
        let mut candidates = if execution.shard.is_some() {
            // A shard goes to its own instance (the one its last attempt ran on) while that one can take it.
            let mut candidates = candidates;
            if let Some(own) = candidates.iter().position(|(executor, _)| Some(executor.id) == execution.executor_id) {
                let own = candidates.remove(own);
                candidates.insert(0, own);
            }
            candidates
        } else {
            self.prefer_fresh_instances(execution, candidates).await?
        };
        if let Some(refused) = claimed_for {
            candidates.retain(|(executor, _)| executor.id != refused);
            if !candidates.is_empty() {
                // The claimed attempt is over: recorded as refused before the next one is claimed.
                let reason = reasons.last().map(String::as_str);
                self.store
                    .set_attempt_status(execution.id, 1, AttemptStatus::Rejected, reason, self.clock.now())
                    .await?;
            }
        }
        let strategy = match self.strategies.get(&task.spec.load_balance_strategy) {
            Ok(strategy) => Some(strategy),
            Err(error) => {
                reasons.push(error.to_string());
                None
            }
        };
        let mut attempt = execution.attempt;
        if let Some(strategy) = strategy
            && self.deliver(execution, task, strategy.as_ref(), candidates, &mut attempt, &mut reasons).await?
        {
            return Ok(());
        }
        let error = if reasons.is_empty() {
            match &task.spec.executor {
                Some(group) => {
                    format!("no active healthy instance of executor `{group}` for task `{}`", task.spec.name)
                }
                None => format!("no active healthy executor instance declared task `{}`", task.spec.name),
            }
        } else {
            format!("no executor instance took task `{}`: {}", task.spec.name, reasons.join("; "))
        };
        tracing::warn!(%error, "attempt failed at dispatch");
        self.metrics.undelivered(execution, attempt);
        // With no instance at all nothing was claimed: the execution, still pending, fails or retries as it is.
        self.settler.attempt_failed(execution, attempt, AttemptStatus::Failed, &error, Some(task)).await?;
        Ok(())
    }

    /// Sends a fire whose first attempt the planner claimed, with no database write before the request: at its
    /// instant, or early to an instance that asked for it. True if the instance took it or it is no longer ours to
    /// send; false, with the reason added, if the instance refused it or no longer takes work.
    async fn send_claimed(
        &self,
        execution: &Execution,
        task: &Task,
        reasons: &mut Vec<String>,
    ) -> Result<bool, jobs_storage::Error> {
        if self.sent.take_withdrawn(execution.id) {
            tracing::debug!("claimed fire ended before its send time; not sent");
            return Ok(true);
        }
        let Some(executor_id) = execution.executor_id else { return Ok(false) };
        let Some(executor) = self.registry.cached_candidate(executor_id) else {
            reasons.push(format!("instance {executor_id} no longer takes work"));
            return Ok(false);
        };
        if !self.has_room(&executor, 0) {
            reasons.push(format!("{}: at its max_concurrency", executor.instance_id));
            return Ok(false);
        }
        if !self.lease.is_valid() {
            tracing::warn!("leader lease lapsed; not dispatching");
            return Ok(true);
        }
        let request = self.request(execution, task, 1);
        match self.client.execute(&executor.base_url, &request).await {
            Ok(()) => {
                let deadline = execution.deadline_at.unwrap_or(execution.scheduled_at);
                self.taken(execution, task, &executor, deadline);
                self.writer.accepted(execution.id, 1, self.clock.now()).await;
                Ok(true)
            }
            Err(error) => {
                self.refused(&executor, 1, &error, reasons).await;
                Ok(false)
            }
        }
    }

    /// The request for attempt `attempt` of `execution`.
    fn request(&self, execution: &Execution, task: &Task, attempt: u32) -> DispatchRequest {
        DispatchRequest {
            execution_id: execution.id,
            task_id: task.id,
            task_name: task.spec.name.clone(),
            parameters: execution.parameters.clone(),
            attempt,
            scheduled_at: execution.scheduled_at,
            timeout_seconds: task.spec.timeout_seconds,
            callback_url: format!("{}/{}/callback", self.callback_base, execution.id),
            shard: execution.shard,
        }
    }

    /// An instance took the execution.
    fn taken(&self, execution: &Execution, task: &Task, executor: &Executor, deadline: Timestamp) {
        let now = self.clock.now();
        tracing::debug!(executor_id = %executor.id, lateness_ms = now.millis_since(execution.scheduled_at), "dispatched");
        self.registry.note_started(executor.id);
        self.sent.insert(execution.id, SentAttempt { task_id: task.id, executor_id: executor.id, deadline }, now);
        self.metrics.dispatched(execution, now);
    }

    /// An instance did not take the execution: counted, an unreachable one struck, and the reason kept.
    async fn refused(
        &self,
        executor: &Executor,
        attempt: u32,
        error: &crate::DispatchError,
        reasons: &mut Vec<String>,
    ) {
        tracing::warn!(executor_id = %executor.id, instance = %executor.instance_id, attempt, %error, "instance did not take the execution");
        self.metrics.refused(error);
        let reason = format!("{}: {error}", executor.instance_id);
        if matches!(error, crate::DispatchError::Unreachable(_))
            && let Some(health) = &self.health
        {
            health.strike(executor, Probe::Unhealthy(reason.clone())).await;
        }
        reasons.push(reason);
    }

    /// On a retry, leaves out the instances this execution already failed on, unless none would remain.
    async fn prefer_fresh_instances(
        &self,
        execution: &Execution,
        candidates: Vec<(Arc<Executor>, u32)>,
    ) -> Result<Vec<(Arc<Executor>, u32)>, jobs_storage::Error> {
        if execution.retries == 0 || candidates.len() < 2 {
            return Ok(candidates);
        }
        let failed: HashSet<ExecutorId> = self
            .store
            .attempts(execution.id)
            .await?
            .into_iter()
            .filter(|attempt| matches!(attempt.status, AttemptStatus::Failed | AttemptStatus::Timeout))
            .filter_map(|attempt| attempt.executor_id)
            .collect();
        let fresh: Vec<(Arc<Executor>, u32)> =
            candidates.iter().filter(|(executor, _)| !failed.contains(&executor.id)).cloned().collect();
        Ok(if fresh.is_empty() { candidates } else { fresh })
    }

    /// Offers the execution to candidates in the strategy's order until one takes it.
    ///
    /// Returns whether it is settled (taken, or no longer ours to send); every refusal's reason is added to
    /// `reasons`, and `attempt` is the last attempt claimed.
    async fn deliver(
        &self,
        execution: &Execution,
        task: &Task,
        strategy: &dyn Strategy,
        mut candidates: Vec<(Arc<Executor>, u32)>,
        attempt: &mut u32,
        reasons: &mut Vec<String>,
    ) -> Result<bool, jobs_storage::Error> {
        // Instances at their max_concurrency would refuse it; they are passed over unless all are.
        if candidates.iter().any(|(executor, running)| self.has_room(executor, *running)) {
            candidates.retain(|(executor, running)| self.has_room(executor, *running));
        }
        // A shard's own instance, which the caller put first, is tried before the strategy places it elsewhere.
        let mut own_first = execution.shard.is_some();
        while !candidates.is_empty() {
            let choices: Vec<Candidate> = candidates
                .iter()
                .map(|(executor, running)| Candidate { id: executor.id, weight: executor.weight, running: *running })
                .collect();
            let picked = if std::mem::take(&mut own_first) && execution.executor_id == Some(choices[0].id) {
                Some(0)
            } else {
                strategy.pick(task.id, &choices)
            };
            let Some(index) = picked else { break };
            let (executor, _) = candidates.remove(index);
            if !self.lease.is_valid() {
                // Deposed (or cut off from the database): the next leader dispatches what is left.
                tracing::warn!("leader lease lapsed; not dispatching");
                return Ok(true);
            }
            let now = self.clock.now();
            let deadline = now.add_millis(i64::from(task.spec.timeout_seconds) * 1000);
            if !self.writer.claim(execution.id, *attempt + 1, executor.id, now, deadline).await? {
                tracing::info!("execution already final or claimed elsewhere; not sent");
                return Ok(true);
            }
            if !self.lease.is_valid() {
                // The claim waited out the lease. This scheduler knows the request never went out, so the attempt
                // is taken back and the execution queued again, rather than found missing later and failed as lost.
                tracing::warn!("leader lease lapsed while claiming; not dispatching");
                let reason = "not sent: the leader's lease lapsed before the request";
                if let Err(error) =
                    self.store.release_unsent(execution.id, *attempt + 1, reason, self.clock.now()).await
                {
                    tracing::warn!(%error, "cannot take back the unsent attempt; it is settled by the instance's heartbeats");
                }
                return Ok(true);
            }
            *attempt += 1;
            let request = self.request(execution, task, *attempt);
            match self.client.execute(&executor.base_url, &request).await {
                Ok(()) => {
                    self.taken(execution, task, &executor, deadline);
                    if *attempt > 1 {
                        // A first attempt has no row: its execution, claimed as running, says all there is.
                        self.writer.accepted(execution.id, *attempt, self.clock.now()).await;
                    }
                    return Ok(true);
                }
                Err(error) => {
                    self.refused(&executor, *attempt, &error, reasons).await;
                    if candidates.is_empty() {
                        // The last claimed attempt carries the failure; the caller records it.
                        break;
                    }
                    self.store
                        .set_attempt_status(
                            execution.id,
                            *attempt,
                            AttemptStatus::Rejected,
                            reasons.last().map(String::as_str),
                            self.clock.now(),
                        )
                        .await?;
                }
            }
        }
        Ok(false)
    }
}

/// How often a fire held for a free slot looks again when no end woke it (ends through other instances, a
/// registry reload).
const ROOM_RECHECK: Duration = Duration::from_millis(200);

/// Instances' clocks may differ by this much and a fire claimed by an earlier leader still be re-sent safely
/// when its send time is later than this leadership's start by more.
const CLOCK_MARGIN_MS: i64 = 500;

/// When an execution's request goes out: a claimed fire at its send time (its instant less any early-delivery lead),
/// anything else when it is due.
pub(crate) fn send_at(execution: &Execution) -> Timestamp {
    match execution.started_at {
        Some(send_at) if execution.is_preclaimed() => send_at,
        _ => crate::queue::due_at(execution),
    }
}
