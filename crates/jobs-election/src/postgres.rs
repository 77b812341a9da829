//! The PostgreSQL election: a session-level advisory lock held by one dedicated session, checked in `pg_locks`
//! every heartbeat.
//!
//! Same contract as MySQL: a connection outside any pool; `pg_advisory_lock` blocks for about one heartbeat under
//! the session's `lock_timeout` (so a follower takes over the moment the lock is freed) and is never called on a
//! session that may hold the lock (it stacks); the check asks `pg_locks` whether this backend holds it; the session
//! asks the server for TCP keepalives and an `idle_session_timeout` so that a vanished client's lock is freed;
//! every query runs under a timeout. The lock id is a stable 64-bit hash of the key ([`crate::postgres_lock_id`]);
//! advisory locks are per database.

use async_trait::async_trait;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::watch;

use jobs_storage::{Store, redact_url};

use crate::campaign::{Campaign, LockSession, Spec, within};
use crate::key::postgres_lock_id;
use crate::timing::{CONNECT_TIMEOUT, Timing};
use crate::{ElectionConfig, Error, LeaderElection, Lease, Result, Role};

/// SQLSTATE `lock_not_available`: `lock_timeout` passed while waiting for the lock.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// How many unanswered keepalive probes end the session.
const KEEPALIVE_COUNT: u64 = 3;

/// Leader election on a PostgreSQL server.
#[derive(Debug)]
pub struct PostgresElection {
    campaign: Campaign,
}

impl PostgresElection {
    /// `url` is the database URL (`postgres://…`) the lock session connects to, outside `store`'s pool.
    pub fn new(url: String, store: Store, config: ElectionConfig, lease: Lease) -> Self {
        Self { campaign: Campaign::new(url, store, config, lease) }
    }
}

#[async_trait]
impl LeaderElection for PostgresElection {
    async fn run(&self, role: watch::Sender<Role>, shutdown: watch::Receiver<bool>) -> Result<()> {
        self.campaign.run::<PgSession>(role, shutdown).await
    }

    fn lock_key(&self) -> &str {
        self.campaign.lock_key()
    }
}

/// The dedicated lock session.
pub(crate) struct PgSession {
    conn: PgConnection,
    id: i64,
    timing: Timing,
}

impl LockSession for PgSession {
    type Options = PgConnectOptions;
    const BACKEND: &'static str = "postgres";

    fn parse(url: &str) -> Result<PgConnectOptions> {
        let options: PgConnectOptions = url.parse().map_err(|err| {
            Error::Config(format!("invalid `database.url` `{}` for the lock connection: {err}", redact_url(url)))
        })?;
        // Named in `pg_stat_activity`; and the heartbeat would log a statement every second otherwise.
        Ok(options.application_name("jobs-election").disable_statement_logging())
    }

    async fn open(options: &PgConnectOptions, spec: Spec<'_>) -> Result<Self> {
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(Error::Connect { address: spec.address.to_owned(), source }),
            Err(_) => return Err(Error::Timeout { what: "opening the lock connection", after: CONNECT_TIMEOUT }),
        };
        let timing = spec.timing;
        // Integers, not input: nothing to inject.
        let wait = AssertSqlSafe(format!("SET lock_timeout = '{}ms'", timing.acquire_wait.as_millis()));
        within(timing.query_timeout, "SET lock_timeout", sqlx::query(wait).execute(&mut conn)).await?;
        // Best effort: the server drops a session that stays idle, or whose peer stops answering keepalives, for
        // longer than the lease, freeing its lock. `idle_session_timeout` needs PostgreSQL 14; keepalives need TCP.
        let idle = timing.session_timeout_secs();
        let interval = timing.heartbeat.as_secs().max(1);
        let settings = [
            format!("SET idle_session_timeout = '{idle}s'"),
            format!("SET tcp_keepalives_idle = {idle}"),
            format!("SET tcp_keepalives_interval = {interval}"),
            format!("SET tcp_keepalives_count = {KEEPALIVE_COUNT}"),
        ];
        for setting in settings {
            let result =
                within(timing.query_timeout, "SET", sqlx::query(AssertSqlSafe(setting.as_str())).execute(&mut conn));
            match result.await {
                Ok(_) => {}
                // The server refused: the session works without it.
                Err(Error::Query { source, .. }) => {
                    tracing::debug!(%setting, error = %source, "lock session setting refused")
                }
                Err(err) => return Err(err),
            }
        }
        Ok(Self { conn, id: postgres_lock_id(spec.key), timing })
    }

    async fn acquire(&mut self) -> Result<bool> {
        let query = sqlx::query("SELECT pg_advisory_lock($1)").bind(self.id).execute(&mut self.conn);
        match within(self.timing.acquire_timeout(), "pg_advisory_lock", query).await {
            Ok(_) => Ok(true),
            Err(Error::Query { source, .. }) if is_lock_timeout(&source) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn holds(&mut self) -> Result<bool> {
        // A BIGINT advisory lock shows as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
        let query = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1)",
        )
        .bind(self.id)
        .fetch_one(&mut self.conn);
        within(self.timing.query_timeout, "pg_locks", query).await
    }

    async fn release(&mut self) -> Result<bool> {
        let query =
            sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)").bind(self.id).fetch_one(&mut self.conn);
        within(self.timing.query_timeout, "pg_advisory_unlock", query).await
    }

    async fn close(self) {
        // On error or timeout the connection is dropped, which ends the session just as well.
        let _ = tokio::time::timeout(self.timing.query_timeout, self.conn.close()).await;
    }
}

fn is_lock_timeout(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db_err) if db_err.code().as_deref() == Some(LOCK_NOT_AVAILABLE))
}

#[cfg(test)]
mod tests;
