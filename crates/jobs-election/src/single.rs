//! The single-node election: with SQLite there is one instance, and it always leads.

use async_trait::async_trait;
use tokio::sync::watch;

use jobs_model::Timestamp;
use jobs_storage::Store;

use crate::campaign::stopped;
use crate::{ElectionConfig, LeaderElection, Lease, Result, Role};

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
        let epoch = self.store.bump_epoch(&self.config.lock_key, &self.config.instance_id, Timestamp::now()).await?;
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
