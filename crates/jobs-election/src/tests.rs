//! Shared helpers of the unit tests.

use crate::ElectionConfig;

/// A config with a 1 s heartbeat (and so a 2 s lease) competing for `lock_key`.
pub(crate) fn config(lock_key: &str) -> ElectionConfig {
    ElectionConfig {
        instance_id: "s1".to_owned(),
        lock_key: lock_key.to_owned(),
        lock_timeout: jobs_model::Duration::from_secs(30),
        heartbeat_interval: jobs_model::Duration::from_secs(1),
    }
}
