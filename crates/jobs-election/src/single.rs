//! The single-node election: with SQLite there is one instance, and it always leads.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use jobs_model::Timestamp;
use jobs_storage::Store;

use crate::campaign::stopped;
use crate::{ElectionConfig, LeaderElection, Lease, Result, Role};

/// The first pause before recording the leadership again after a failure; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Always the leader, with a lease that holds until shutdown; still bumps the epoch once so that planning writes
/// carry one.
#[derive(Debug)]
pub struct SingleNode {
    store: Store,
    config: ElectionConfig,
    lease: Lease,
}

impl SingleNode {
    pub fn new(store: Store, config: ElectionConfig, lease: Lease) -> Self {
        Self { store, config, lease }
    }
}

#[async_trait]
impl LeaderElection for SingleNode {
    async fn run(&self, role: watch::Sender<Role>, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        // Retried until it works: a database that cannot be written yet (a read-only folder, a full disk) must not
        // leave the node a follower forever. The instance is not ready (`GET /ready`) meanwhile.
        let mut pause = RETRY_FIRST;
        let mut failures = 0_u32;
        let epoch = loop {
            match self.store.bump_epoch(&self.config.lock_key, &self.config.instance_id, Timestamp::now()).await {
                Ok(epoch) => break epoch,
                Err(error) => {
                    failures += 1;
                    tracing::error!(%error, failures, retry_in = ?pause, "cannot record this node's leadership; retrying");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopped(&mut shutdown) => return Ok(()),
            }
            pause = (pause * 2).min(RETRY_MAX);
        };
        tracing::info!(epoch, instance_id = %self.config.instance_id, "leading as the single node");
        self.lease.hold();
        role.send_replace(Role::Leader { epoch });
        // Nothing can depose a single node; wait for shutdown, then step down.
        stopped(&mut shutdown).await;
        self.lease.clear();
        role.send_replace(Role::Follower);
        Ok(())
    }

    fn lock_key(&self) -> &str {
        &self.config.lock_key
    }
}
