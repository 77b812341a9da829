//! The registry service: what the API and the dispatcher ask about executor instances.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::broadcast;

use jobs_model::protocol::{HeartbeatRequest, RegisterRequest};
use jobs_model::{Executor, ExecutorId, ExecutorState, ExecutorStatus, Health, Timestamp, validate};
use jobs_storage::{ExecutorFilter, Store};

use crate::{Error, ExecutorsConfig, HealthChange, Result};

/// An executor with what the registry derives for it.
#[derive(Debug, Clone)]
pub struct ExecutorView {
    pub executor: Executor,
    pub state: ExecutorState,
    /// Executions the scheduler believes this instance is running.
    pub running: u32,
}

#[derive(Debug, Default)]
struct Snapshot {
    loaded_at: Option<Instant>,
    executors: Arc<Vec<Arc<Executor>>>,
    /// Task name → positions in `executors` of the instances that declared it.
    by_task: Arc<HashMap<String, Vec<usize>>>,
    /// Running executions per instance: the database's count at load, plus what this instance dispatched since,
    /// less what ended since.
    running: HashMap<ExecutorId, u32>,
    /// When reloading last failed without a success since (the database away), and the last such outage that
    /// ended: `(from, to)`.
    failing_since: Option<Timestamp>,
    last_outage: Option<(Timestamp, Timestamp)>,
}

impl Snapshot {
    /// The silence after which an instance counts as offline at `now`: `offline_after`, stretched by the last
    /// database outage for `offline_after` after it ended. Heartbeats sent while the database was away could not be
    /// recorded, which is no fault of the instances that sent them.
    fn offline_after_at(&self, now: Timestamp, offline_after: i64) -> i64 {
        let outage = match (self.failing_since, self.last_outage) {
            (Some(from), _) => now.millis_since(from),
            (None, Some((from, to))) if now.millis_since(to) <= offline_after => to.millis_since(from),
            _ => 0,
        };
        offline_after.saturating_add(outage.max(0))
    }

    /// The database answered at `now`: an outage in progress ended. A database that fails on and off (saturated,
    /// not down) is one outage, not many short ones: a success between failures must not shrink the allowance.
    fn database_answered(&mut self, now: Timestamp, offline_after: i64) {
        if let Some(from) = self.failing_since.take() {
            let from = match self.last_outage {
                Some((earlier, to)) if from.millis_since(to) <= offline_after => earlier,
                _ => from,
            };
            self.last_outage = Some((from, now));
        }
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn failures_between_successes_are_one_outage() {
        let at = Timestamp::from_millis;
        // Failing from 0 to 10 s, answering, failing again from 12 s to 20 s: one outage of 20 s.
        let mut snapshot = Snapshot { failing_since: Some(at(0)), ..Snapshot::default() };
        snapshot.database_answered(at(10_000), 30_000);
        snapshot.failing_since = Some(at(12_000));
        snapshot.database_answered(at(20_000), 30_000);
        assert_eq!(snapshot.last_outage, Some((at(0), at(20_000))));
        assert_eq!(snapshot.offline_after_at(at(21_000), 30_000), 50_000);
        // Long after, a new failure is an outage of its own.
        snapshot.failing_since = Some(at(100_000));
        snapshot.database_answered(at(101_000), 30_000);
        assert_eq!(snapshot.last_outage, Some((at(100_000), at(101_000))));
    }
}

/// Registration, heartbeats, maintenance and candidate lookup over the executors table.
#[derive(Debug)]
pub struct Registry {
    /// Reads (the candidate snapshot, lists, running counts): the work pool.
    store: Store,
    /// Heartbeats, registrations and status changes: the control plane's connections.
    control: Store,
    config: ExecutorsConfig,
    snapshot: Mutex<Snapshot>,
    /// Health changes found by the health checks, for whoever subscribed (alerts).
    health_changes: broadcast::Sender<HealthChange>,
}

impl Registry {
    /// How stale the candidate snapshot may be before a dispatch reloads it.
    pub const SNAPSHOT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

    /// A registry on `store`: its writes (heartbeats, registrations, status and health changes) on the store's
    /// control-plane connections (see [`Store::control_plane`]), so that they never wait behind the work or
    /// behind the registry's own reads, which use the work pool.
    pub fn new(store: Store, config: ExecutorsConfig) -> Self {
        Self {
            control: store.control_plane(),
            store,
            config,
            snapshot: Mutex::default(),
            health_changes: broadcast::channel(256).0,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store on the control plane's connections, for the registry's writes.
    pub fn control(&self) -> &Store {
        &self.control
    }

    /// The heartbeat interval executors are told to keep, in whole seconds (at least 1).
    pub fn heartbeat_interval_seconds(&self) -> u64 {
        self.config.heartbeat_interval.get().as_secs().max(1)
    }

    fn offline_after_millis(&self) -> i64 {
        self.config.offline_after_millis()
    }

    /// Registers (or re-registers) an instance; idempotent on (name, instance_id).
    ///
    /// Returns the stored executor and whether it was new.
    #[tracing::instrument(skip_all, fields(name = %request.name, instance_id = %request.instance_id))]
    pub async fn register(&self, request: &RegisterRequest) -> Result<(Executor, bool)> {
        validate::name("name", &request.name)?;
        validate::name("instance_id", &request.instance_id)?;
        let base_url = validate::http_url("base_url", &request.base_url)?;
        let health_check_url = match &request.health_check_url {
            Some(url) => validate::http_url("health_check_url", url)?,
            None => format!("{base_url}/health"),
        };
        let weight = request.weight.unwrap_or(1);
        validate::range("weight", weight.into(), 1, 1000)?;
        let early_delivery_ms = request.early_delivery_ms.unwrap_or(0);
        validate::range("early_delivery_ms", early_delivery_ms.try_into().unwrap_or(i64::MAX), 0, 60_000)?;
        if let Some(max) = request.max_concurrency {
            validate::range("max_concurrency", max.into(), 1, 100_000)?;
        }
        if request.tags.len() > 64 {
            return Err(jobs_model::Error::invalid("tags", "at most 64 tags").into());
        }
        for tag in &request.tags {
            validate::max_len("tags", tag, 128)?;
        }
        let mut tasks = Vec::with_capacity(request.tasks.len());
        for (index, task) in request.tasks.iter().enumerate() {
            validate::name(&format!("tasks[{index}].task_name"), &task.task_name)?;
            if !tasks.contains(&task.task_name) {
                tasks.push(task.task_name.clone());
            }
        }
        let now = Timestamp::now();
        let executor = Executor {
            id: ExecutorId::new(),
            name: request.name.clone(),
            instance_id: request.instance_id.clone(),
            base_url,
            health_check_url,
            weight,
            tags: request.tags.clone(),
            metadata: request.metadata.clone(),
            status: ExecutorStatus::Active,
            status_reason: None,
            status_changed_by: None,
            status_changed_at: None,
            health: Health::Healthy,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_heartbeat_at: Some(now),
            registered_at: now,
            tasks,
            early_delivery_ms,
            max_concurrency: request.max_concurrency,
        };
        let (stored, created) = self.control.upsert_executor(&executor).await?;
        self.invalidate();
        tracing::info!(executor_id = %stored.id, created, "executor registered");
        Ok((stored, created))
    }

    /// Records a heartbeat; an unknown id is `NotFound`, which tells an SDK to register again.
    pub async fn heartbeat(&self, id: ExecutorId, _request: &HeartbeatRequest) -> Result<()> {
        let recorded = self.control.record_heartbeat(id, Timestamp::now()).await;
        if !self.note_database(recorded)? {
            return Err(Error::NotFound(id));
        }
        Ok(())
    }

    /// Puts an instance into maintenance or back to active, recording why and by whom.
    pub async fn set_status(
        &self,
        id: ExecutorId,
        status: ExecutorStatus,
        reason: Option<&str>,
        by: Option<&str>,
    ) -> Result<ExecutorView> {
        if let Some(reason) = reason {
            validate::max_len("reason", reason, 1024)?;
        }
        if let Some(by) = by {
            // The column holds 255 characters.
            validate::max_len("by", by, 255)?;
        }
        if !self.control.set_executor_status(id, status, reason, by, Timestamp::now()).await? {
            return Err(Error::NotFound(id));
        }
        self.invalidate();
        tracing::info!(executor_id = %id, status = %status, reason, "executor status changed");
        self.get(id).await
    }

    /// Removes an instance; it gets no more work.
    pub async fn deregister(&self, id: ExecutorId) -> Result<()> {
        if !self.control.delete_executor(id).await? {
            return Err(Error::NotFound(id));
        }
        self.invalidate();
        tracing::info!(executor_id = %id, "executor deregistered");
        Ok(())
    }

    pub async fn get(&self, id: ExecutorId) -> Result<ExecutorView> {
        let executor = self.store.get_executor(id).await?.ok_or(Error::NotFound(id))?;
        let running = self.store.running_counts().await?;
        Ok(self.view(executor, &running, Timestamp::now()))
    }

    /// Every instance, optionally only those of one group and one state.
    pub async fn list(&self, name: Option<&str>, state: Option<ExecutorState>) -> Result<Vec<ExecutorView>> {
        let filter = ExecutorFilter { name: name.map(str::to_owned), status: None };
        let executors = self.store.list_executors(&filter).await?;
        let running = self.store.running_counts().await?;
        let now = Timestamp::now();
        Ok(executors
            .into_iter()
            .map(|executor| self.view(executor, &running, now))
            .filter(|view| state.is_none_or(|state| view.state == state))
            .collect())
    }

    fn view(&self, executor: Executor, running: &HashMap<ExecutorId, u32>, now: Timestamp) -> ExecutorView {
        let state = executor.state(now, self.offline_after_at(now));
        let running = running.get(&executor.id).copied().unwrap_or(0);
        ExecutorView { executor, state, running }
    }

    /// The instances that may take a dispatch of `task_name` now, with their running counts.
    ///
    /// With `group`, every instance of that executor group; otherwise every instance that declared the task.
    /// Only active, healthy instances with a recent heartbeat qualify.
    pub async fn candidates(&self, task_name: &str, group: Option<&str>) -> Result<Vec<(Arc<Executor>, u32)>> {
        let (executors, by_task, running) = self.snapshot().await?;
        let now = Timestamp::now();
        let offline_after = self.offline_after_at(now);
        let chosen: Vec<&Arc<Executor>> = match group {
            Some(group) => executors.iter().filter(|executor| executor.name == group).collect(),
            None => by_task.get(task_name).into_iter().flatten().filter_map(|index| executors.get(*index)).collect(),
        };
        Ok(chosen
            .into_iter()
            .filter(|executor| executor.takes_work(now, offline_after))
            .map(|executor| (executor.clone(), running.get(&executor.id).copied().unwrap_or(0)))
            .collect())
    }

    /// Instance `id` as the last snapshot has it, if it still takes work; never reads the database, so that a send at a
    /// fire's instant waits for nothing (the snapshot is refreshed by every [`Registry::candidates`] call).
    pub fn cached_candidate(&self, id: ExecutorId) -> Option<Arc<Executor>> {
        let snapshot = self.lock();
        let executor = snapshot.executors.iter().find(|executor| executor.id == id)?;
        let now = Timestamp::now();
        executor.takes_work(now, snapshot.offline_after_at(now, self.offline_after_millis())).then(|| executor.clone())
    }

    /// Instance `id` as a snapshot at most a second old has it, whatever its state.
    pub async fn instance(&self, id: ExecutorId) -> Option<Arc<Executor>> {
        let (executors, _, _) = self.snapshot().await.ok()?;
        executors.iter().find(|executor| executor.id == id).cloned()
    }

    /// The health changes the health checks find from now on (only the leader runs them).
    pub fn health_changes(&self) -> broadcast::Receiver<HealthChange> {
        self.health_changes.subscribe()
    }

    /// Tells the subscribers of [`Registry::health_changes`]; with none, the change is only logged.
    pub(crate) fn health_changed(&self, change: HealthChange) {
        let _ = self.health_changes.send(change);
    }

    /// Forgets the snapshot so that the next lookup sees a change made through this instance.
    pub fn invalidate(&self) {
        self.lock().loaded_at = None;
    }

    #[allow(clippy::type_complexity)]
    async fn snapshot(
        &self,
    ) -> Result<(Arc<Vec<Arc<Executor>>>, Arc<HashMap<String, Vec<usize>>>, HashMap<ExecutorId, u32>)> {
        {
            let snapshot = self.lock();
            if snapshot.loaded_at.is_some_and(|at| at.elapsed() < Self::SNAPSHOT_MAX_AGE) {
                return Ok((snapshot.executors.clone(), snapshot.by_task.clone(), snapshot.running.clone()));
            }
        }
        let loaded = self.store.list_executors(&ExecutorFilter::default()).await;
        let executors: Vec<Arc<Executor>> = self.note_database(loaded)?.into_iter().map(Arc::new).collect();
        let mut by_task: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, executor) in executors.iter().enumerate() {
            for task in &executor.tasks {
                by_task.entry(task.clone()).or_default().push(index);
            }
        }
        let (executors, by_task) = (Arc::new(executors), Arc::new(by_task));
        let running = self.store.running_counts().await?;
        let mut snapshot = self.lock();
        snapshot.loaded_at = Some(Instant::now());
        snapshot.executors = executors.clone();
        snapshot.by_task = by_task.clone();
        snapshot.running = running.clone();
        Ok((executors, by_task, running))
    }

    /// The silence after which an instance counts as offline now (see `Snapshot::offline_after_at`).
    fn offline_after_at(&self, now: Timestamp) -> i64 {
        self.lock().offline_after_at(now, self.offline_after_millis())
    }

    /// How long an instance may stay silent before it counts as offline, outside database outages.
    pub fn offline_after(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.offline_after_millis()).unwrap_or(0))
    }

    /// Notes whether a read of the database worked, to tell database outages from silent instances.
    fn note_database<T>(&self, result: jobs_storage::Result<T>) -> Result<T> {
        let now = Timestamp::now();
        let mut snapshot = self.lock();
        match &result {
            Err(error) if error.kind() == jobs_model::ErrorKind::Unavailable => {
                snapshot.failing_since.get_or_insert(now);
            }
            Err(_) => {}
            Ok(_) => snapshot.database_answered(now, self.offline_after_millis()),
        }
        Ok(result?)
    }

    /// Counts a dispatch to `id` at once, so that `least_loaded` sees it before the next reload.
    pub fn note_started(&self, id: ExecutorId) {
        *self.lock().running.entry(id).or_default() += 1;
    }

    /// Counts the end of an attempt `id` was running at once, so that `least_loaded` sees the instance free again
    /// before the next reload.
    pub fn note_finished(&self, id: ExecutorId) {
        if let Some(running) = self.lock().running.get_mut(&id) {
            *running = running.saturating_sub(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        // The snapshot is a cache: a panic while holding it leaves nothing inconsistent worth refusing.
        self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
