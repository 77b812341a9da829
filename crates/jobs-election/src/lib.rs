//! Leader election: exactly one scheduler instance plans and dispatches.
//!
//! An election publishes the instance's [`Role`] on a watch channel; the engine starts and stops its
//! planner as the role changes.
//! Alongside the role, a leader holds a [`Lease`] that every good lock check renews: the dispatcher checks it
//! right before each dispatch, so a leader whose checks stop also stops dispatching.
//!
//! Implementations: [`MySqlElection`] (`GET_LOCK`), [`PostgresElection`] (advisory lock), both on a dedicated lock
//! connection outside the pool, and [`SingleNode`] for SQLite; [`for_store`] picks the one for a store.

mod campaign;
mod config;
mod error;
mod key;
mod lease;
mod mysql;
mod postgres;
mod single;
mod timing;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use jobs_storage::{Backend, Store};

pub use crate::config::ElectionConfig;
pub use crate::error::{Error, Result};
pub use crate::key::{mysql_lock_name, postgres_lock_id};
pub use crate::lease::Lease;
pub use crate::mysql::MySqlElection;
pub use crate::postgres::PostgresElection;
pub use crate::single::SingleNode;

/// The election for `store`'s backend: `GET_LOCK` on MySQL/MariaDB, an advisory lock on PostgreSQL, single node on
/// SQLite. `url` is the store's full database URL, for the dedicated lock connection. Its other statements (the
/// leader record, epochs, ending a dead leader's sessions) run on the store's control-plane connections, so that a
/// saturated work pool cannot delay them.
pub fn for_store(store: &Store, url: &str, config: ElectionConfig, lease: Lease) -> Arc<dyn LeaderElection> {
    let store = &store.control_plane();
    match store.backend() {
        Backend::MySql => Arc::new(MySqlElection::new(url.to_owned(), store.clone(), config, lease)),
        Backend::Postgres => Arc::new(PostgresElection::new(url.to_owned(), store.clone(), config, lease)),
        Backend::Sqlite => Arc::new(SingleNode::new(store.clone(), config, lease)),
    }
}

/// What this instance is, as far as the election knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Leading under `epoch`, which is carried by every planning write.
    Leader {
        epoch: i64,
    },
}

impl Role {
    pub fn is_leader(self) -> bool {
        matches!(self, Self::Leader { .. })
    }

    pub fn epoch(self) -> Option<i64> {
        match self {
            Self::Leader { epoch } => Some(epoch),
            Self::Follower => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader { .. } => "leader",
            Self::Follower => "follower",
        }
    }
}

/// A way of electing one leader among the scheduler instances that share a database.
#[async_trait]
pub trait LeaderElection: Send + Sync + Debug {
    /// Runs the election until `shutdown` turns true, publishing role changes to `role`.
    ///
    /// On shutdown a leader releases leadership at once so that another instance can take over.
    /// Lock connection errors never end the run: the election steps down and campaigns again.
    /// It returns an error only for a bad setting, or (single node) when the epoch cannot be recorded.
    async fn run(&self, role: watch::Sender<Role>, shutdown: watch::Receiver<bool>) -> Result<()>;

    /// The lock (or scope) this election competes for; planning writes are checked against its epoch.
    fn lock_key(&self) -> &str;
}

#[cfg(test)]
mod tests;
