//! The MySQL/MariaDB election: `GET_LOCK` held by one dedicated session, checked with `IS_USED_LOCK` every heartbeat.
//!
//! Traps this avoids: the lock session is never a pooled connection (a pool recycles connections and
//! silently drops the lock); `GET_LOCK` is never called on a session that may hold the lock (it stacks a second
//! hold), so the heartbeat is `IS_USED_LOCK(name) = CONNECTION_ID()`; the session sets a short `wait_timeout` so
//! that a vanished client does not keep the lock for the default 8 hours; every query runs under a timeout; the
//! lock wait is never negative, and only an answer of 1 counts as success (MariaDB answers NULL for a negative
//! wait, MySQL for a killed session); names longer than 64 characters are shortened deterministically.

use async_trait::async_trait;
use sea_orm::sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::watch;

use jobs_storage::{Store, redact_url};

use crate::campaign::{Campaign, LockSession, Spec, within};
use crate::key::mysql_lock_name;
use crate::timing::{CONNECT_TIMEOUT, Timing};
use crate::{ElectionConfig, Error, LeaderElection, Lease, Result, Role};

/// Leader election on a MySQL or MariaDB server.
#[derive(Debug)]
pub struct MySqlElection {
    campaign: Campaign,
}

impl MySqlElection {
    /// `url` is the database URL (`mysql://…`) the lock session connects to, outside `store`'s pool.
    pub fn new(url: String, store: Store, config: ElectionConfig, lease: Lease) -> Self {
        Self { campaign: Campaign::new(url, store, config, lease) }
    }
}

#[async_trait]
impl LeaderElection for MySqlElection {
    async fn run(&self, role: watch::Sender<Role>, shutdown: watch::Receiver<bool>) -> Result<()> {
        self.campaign.run::<MySqlSession>(role, shutdown).await
    }

    fn lock_key(&self) -> &str {
        self.campaign.lock_key()
    }
}

/// The dedicated lock session.
pub(crate) struct MySqlSession {
    conn: MySqlConnection,
    /// The lock name: the key, shortened to 64 characters if longer.
    name: String,
    timing: Timing,
}

impl LockSession for MySqlSession {
    type Options = MySqlConnectOptions;
    const BACKEND: &'static str = "mysql";

    fn parse(url: &str) -> Result<MySqlConnectOptions> {
        let options: MySqlConnectOptions = url.parse().map_err(|err| {
            Error::Config(format!("invalid `database.url` `{}` for the lock connection: {err}", redact_url(url)))
        })?;
        // The heartbeat would log a statement every second otherwise.
        Ok(options.disable_statement_logging())
    }

    async fn open(options: &MySqlConnectOptions, spec: Spec<'_>) -> Result<Self> {
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(Error::Connect { address: spec.address.to_owned(), source }),
            Err(_) => return Err(Error::Timeout { what: "opening the lock connection", after: CONNECT_TIMEOUT }),
        };
        // sqlx has no TCP keepalive knob. The defence against a vanished client is a short `wait_timeout` (the
        // server drops a session silent that long, and its lock with it; it outlasts the lease, so a cut-off leader
        // stops dispatching first) plus the leader's own check every heartbeat.
        let secs = spec.timing.session_timeout_secs();
        // An integer, not input: nothing to inject.
        let sql = AssertSqlSafe(format!("SET SESSION wait_timeout = {secs}"));
        within(spec.timing.query_timeout, "SET SESSION wait_timeout", sqlx::query(sql).execute(&mut conn)).await?;
        Ok(Self { conn, name: mysql_lock_name(spec.key).into_owned(), timing: spec.timing })
    }

    async fn acquire(&mut self) -> Result<bool> {
        // Never negative: MySQL waits forever on a negative timeout and MariaDB answers NULL.
        let wait = i64::try_from(self.timing.acquire_wait_secs()).unwrap_or(i64::MAX).max(1);
        let query = sqlx::query_scalar::<_, Option<i64>>("SELECT CAST(GET_LOCK(?, ?) AS SIGNED)")
            .bind(self.name.as_str())
            .bind(wait)
            .fetch_one(&mut self.conn);
        get_lock_answer(within(self.timing.acquire_timeout(), "GET_LOCK", query).await?)
    }

    async fn holds(&mut self) -> Result<bool> {
        // NULL when the lock is free.
        let query = sqlx::query_scalar::<_, Option<i64>>("SELECT CAST(IS_USED_LOCK(?) = CONNECTION_ID() AS SIGNED)")
            .bind(self.name.as_str())
            .fetch_one(&mut self.conn);
        Ok(within(self.timing.query_timeout, "IS_USED_LOCK", query).await? == Some(1))
    }

    async fn release(&mut self) -> Result<bool> {
        // 1: released; 0: held by another session; NULL: not held at all.
        let query = sqlx::query_scalar::<_, Option<i64>>("SELECT CAST(RELEASE_LOCK(?) AS SIGNED)")
            .bind(self.name.as_str())
            .fetch_one(&mut self.conn);
        Ok(within(self.timing.query_timeout, "RELEASE_LOCK", query).await? == Some(1))
    }

    async fn close(self) {
        // On error or timeout the connection is dropped, which ends the session just as well.
        let _ = tokio::time::timeout(self.timing.query_timeout, self.conn.close()).await;
    }
}

/// What a `GET_LOCK` answer means: 1 is the lock, 0 a wait that timed out; anything else, NULL above all,
/// is an error and never leadership.
pub(crate) fn get_lock_answer(answer: Option<i64>) -> Result<bool> {
    match answer {
        Some(1) => Ok(true),
        Some(0) => Ok(false),
        Some(other) => Err(Error::Unexpected { what: "GET_LOCK", answer: other.to_string() }),
        None => Err(Error::Unexpected { what: "GET_LOCK", answer: "NULL".to_owned() }),
    }
}

#[cfg(test)]
mod tests;
