//! What an instance's heartbeat reports, settled after the heartbeat is answered: the claimed fires it got (or
//! never got), and the executions it no longer runs.
//!
//! A heartbeat is control plane: it is answered once the instance's liveness is recorded, however busy the
//! database is with work. Settling its report runs afterwards, at most once at a time per instance (a report that
//! comes while the last one is being settled is dropped: the next heartbeat carries the newer one), and a failure
//! only leaves the work for the next heartbeat.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use jobs_election::Role;
use jobs_model::{AttemptStatus, ExecutionId, ExecutorId, Timestamp};
use jobs_storage::Store;

use crate::clock::Clock;
use crate::mailbox::Mailbox;
use crate::queue::{OWN_CLAIMS_SETTLED_MS, Wake};
use crate::settle::Settler;

/// A claim sent longer ago than this before a heartbeat arrives is in that heartbeat's report if its instance got
/// it: the instance builds the report just before sending it, and the request takes far less than this.
const REPORT_CROSSING_MS: i64 = 2_000;

#[derive(Debug)]
pub(crate) struct Reports {
    pub(crate) store: Store,
    pub(crate) settler: Arc<Settler>,
    pub(crate) role: watch::Receiver<Role>,
    pub(crate) lock_key: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) queue: Arc<Mailbox<Wake>>,
    /// How long an execution may run unreported before it is lost: two heartbeat intervals and a second, which
    /// covers a heartbeat crossing a dispatch.
    pub(crate) lost_after_ms: i64,
    /// The instances whose last report is being settled.
    pub(crate) busy: Mutex<HashSet<ExecutorId>>,
}

impl Reports {
    /// Settles `running`, the report of instance `id`'s heartbeat, in the background.
    pub(crate) fn settle(self: &Arc<Self>, id: ExecutorId, running: Vec<ExecutionId>) {
        if !self.lock_busy().insert(id) {
            return;
        }
        let reports = self.clone();
        tokio::spawn(async move {
            if let Err(error) = reports.settle_now(id, &running).await {
                tracing::warn!(executor_id = %id, %error, "cannot settle a heartbeat's report now; next heartbeat");
            }
            reports.lock_busy().remove(&id);
        });
    }

    /// Fires claimed for this instance that are still not marked as taken are settled before anything sends them
    /// again: those the instance reports run, the others never reached it and go back to the queue. That is the
    /// claims of an earlier leader sent a moment before this report was made (the first heartbeat after a takeover
    /// settles them), and the claims of the leader in office once it no longer tells them apart itself.
    /// Then what the instance should be running and no longer reports fails as lost.
    async fn settle_now(&self, id: ExecutorId, running: &[ExecutionId]) -> crate::Result<()> {
        let now = self.clock.now();
        let role = *self.role.borrow();
        let current_epoch = match role {
            Role::Leader { epoch } => Some(epoch),
            Role::Follower => self.store.leader(&self.lock_key).await?.map(|leader| leader.epoch),
        };
        let current = current_epoch.map(|epoch| (epoch, now.add_millis(-OWN_CLAIMS_SETTLED_MS)));
        let (marked, unsent) =
            self.store.settle_unsent_claims(id, running, now.add_millis(-REPORT_CROSSING_MS), current, now).await?;
        if marked + unsent > 0 {
            tracing::info!(executor_id = %id, marked, unsent, "claimed fires settled by a heartbeat");
            if unsent > 0 {
                self.queue.post(Wake::Pending);
            }
        }
        let reported: HashSet<ExecutionId> = running.iter().copied().collect();
        let unreported: Vec<_> = self
            .store
            .running_on(id)
            .await?
            .into_iter()
            .filter(|execution| !reported.contains(&execution.id))
            .collect();
        if unreported.is_empty() {
            return Ok(());
        }
        let mut started: HashMap<ExecutionId, Timestamp> = HashMap::new();
        for execution in &unreported {
            // A first attempt's start is on its row; a later one's on its attempt's.
            let start = if execution.attempt == 1 {
                execution.started_at
            } else {
                let attempts = self.store.attempts(execution.id).await?;
                attempts.iter().find(|attempt| attempt.attempt == execution.attempt).map(|attempt| attempt.started_at)
            };
            if let Some(start) = start {
                started.insert(execution.id, start);
            }
        }
        let mut tasks = HashMap::new();
        for execution in unreported {
            let Some(start) = started.get(&execution.id) else { continue };
            if now.millis_since(*start) <= self.lost_after_ms {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = tasks.entry(execution.task_id) {
                entry.insert(self.store.get_task(execution.task_id).await?);
            }
            let task = tasks.get(&execution.task_id).and_then(Option::as_ref);
            let reason = "lost: the executor instance no longer reports it running";
            tracing::info!(execution_id = %execution.id, "{reason}");
            self.settler.attempt_failed(&execution, execution.attempt, AttemptStatus::Failed, reason, task).await?;
        }
        Ok(())
    }

    fn lock_busy(&self) -> std::sync::MutexGuard<'_, HashSet<ExecutorId>> {
        self.busy.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
