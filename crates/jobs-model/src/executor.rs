//! Executor instances as the scheduler sees them.

use serde::{Deserialize, Serialize};

use crate::task::word_enum;
use crate::{ExecutorId, Parameters, Timestamp};

word_enum!(
    /// What an operator set: whether the instance takes new work.
    ExecutorStatus {
        Active => "active",
        Maintenance => "maintenance",
    }
);

word_enum!(
    /// What health checks found.
    Health {
        Healthy => "healthy",
        Unhealthy => "unhealthy",
    }
);

word_enum!(
    /// The state shown to operators: maintenance wins, then a missing heartbeat makes it offline.
    ExecutorState {
        Active => "active",
        Maintenance => "maintenance",
        Offline => "offline",
    }
);

/// One registered executor instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executor {
    pub id: ExecutorId,
    /// The executor group (service) name.
    pub name: String,
    pub instance_id: String,
    pub base_url: String,
    pub health_check_url: String,
    pub weight: u32,
    pub tags: Vec<String>,
    pub metadata: Parameters,
    pub status: ExecutorStatus,
    pub status_reason: Option<String>,
    pub status_changed_by: Option<String>,
    pub status_changed_at: Option<Timestamp>,
    pub health: Health,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub last_heartbeat_at: Option<Timestamp>,
    pub registered_at: Timestamp,
    /// Names of the tasks this instance declared it can run.
    pub tasks: Vec<String>,
    /// How many milliseconds before a fire's instant the instance accepts it (early delivery); 0: at the instant.
    #[serde(default)]
    pub early_delivery_ms: u64,
    /// At most this many executions in flight on the instance at once (its own capacity, declared at
    /// registration); the scheduler holds the rest in its queue. `None`: no limit declared.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

impl Executor {
    /// The state an operator sees, given how long without a heartbeat makes an instance offline.
    pub fn state(&self, now: Timestamp, offline_after_millis: i64) -> ExecutorState {
        if self.status == ExecutorStatus::Maintenance {
            return ExecutorState::Maintenance;
        }
        let seen = self.last_heartbeat_at.unwrap_or(self.registered_at);
        if now.millis_since(seen) > offline_after_millis {
            return ExecutorState::Offline;
        }
        ExecutorState::Active
    }

    /// Whether new work may go to this instance.
    pub fn takes_work(&self, now: Timestamp, offline_after_millis: i64) -> bool {
        self.health == Health::Healthy && self.state(now, offline_after_millis) == ExecutorState::Active
    }
}
