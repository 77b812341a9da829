//! The database sessions of a scheduler instance: their timeouts, their tag, and how the next leader ends them.
//!
//! A leader that freezes (a stopped process, a partition) keeps its sessions open, and with them the row locks of
//! its open transactions; a new leader waiting on those locks would stall until the server dropped them. So every
//! pooled session:
//! - fails a lock wait within [`LOCK_WAIT`] instead of MySQL's 50 s or PostgreSQL's forever;
//! - is dropped by the server after [`IDLE_IN_TRANSACTION`] idle inside a transaction (PostgreSQL) or
//!   [`MYSQL_WAIT`] idle at all (MySQL, whose default is 8 hours), so that a vanished client's sessions go away;
//! - carries its instance's [`SessionTag`]: PostgreSQL shows it as `application_name`; MySQL shows other sessions
//!   nothing a client sets, so each session records its connection id and client address in `scheduler_sessions`.
//!
//! A new leader reads the deposed leader's tag from the leader record and ends its sessions
//! ([`Store::end_sessions`]: `KILL CONNECTION` on MySQL, `pg_terminate_backend` on PostgreSQL) before it plans.

use std::fmt;
use std::time::Duration;

use sea_orm::sqlx::mysql::MySqlConnection;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{self, AssertSqlSafe, Executor};
use sea_orm::{ConnectOptions, ConnectionTrait, Statement, Value};

use jobs_model::Timestamp;

use crate::{Backend, Result, Store};

/// How long a statement waits for a row lock before it fails.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a PostgreSQL session may sit idle inside a transaction before the server ends it.
pub(crate) const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);
/// How long a MySQL session may sit idle before the server ends it.
pub(crate) const MYSQL_WAIT: Duration = Duration::from_secs(60);
/// Pooled connections idle this long are closed by the pool, before the server's [`MYSQL_WAIT`] ends them.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(45);
/// PostgreSQL keeps at most 63 bytes of `application_name`.
const MAX_TAG_BYTES: usize = 63;

/// What this instance's database sessions are named: `jobs:{random}:{instance id}`, unique to this process (a
/// restarted instance with the same id gets a new one, so that it never ends its own sessions).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTag(String);

impl SessionTag {
    pub fn new(instance_id: &str) -> Self {
        // A version 7 UUID ends in random bits.
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let mut tag = format!("jobs:{}:{instance_id}", &nonce[nonce.len() - 8..]);
        if tag.len() > MAX_TAG_BYTES {
            let mut end = MAX_TAG_BYTES;
            while !tag.is_char_boundary(end) {
                end -= 1;
            }
            tag.truncate(end);
        }
        Self(tag)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SessionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sets the session timeouts (and the tag, if any) on every connection the pool opens.
pub(crate) fn configure(options: &mut ConnectOptions, backend: Backend, tag: Option<&SessionTag>) {
    match backend {
        Backend::MySql => {
            let tag = tag.map(|tag| tag.as_str().to_owned());
            options.idle_timeout(POOL_IDLE).map_sqlx_mysql_pool_opts(move |pool| {
                let tag = tag.clone();
                pool.after_connect(move |conn, _| {
                    let tag = tag.clone();
                    Box::pin(async move { prepare_mysql(conn, tag.as_deref()).await })
                })
            });
        }
        Backend::Postgres => {
            let name = tag.map_or_else(|| "jobs".to_owned(), |tag| tag.as_str().to_owned());
            options.map_sqlx_postgres_opts(move |opts: PgConnectOptions| {
                opts.application_name(&name).options([
                    ("lock_timeout", format!("{}ms", LOCK_WAIT.as_millis())),
                    ("idle_in_transaction_session_timeout", format!("{}ms", IDLE_IN_TRANSACTION.as_millis())),
                ])
            });
        }
        Backend::Sqlite => {}
    }
}

/// The MySQL session's timeouts, and its row in `scheduler_sessions` when tagged.
async fn prepare_mysql(conn: &mut MySqlConnection, tag: Option<&str>) -> Result<(), sqlx::Error> {
    // Integers, not input: nothing to inject.
    let timeouts = format!(
        "SET SESSION wait_timeout = {}, innodb_lock_wait_timeout = {}",
        MYSQL_WAIT.as_secs(),
        LOCK_WAIT.as_secs()
    );
    conn.execute(AssertSqlSafe(timeouts)).await?;
    let Some(tag) = tag else {
        return Ok(());
    };
    let register = sqlx::query(
        "REPLACE INTO scheduler_sessions (connection_id, host, tag, opened_at) \
         SELECT ID, HOST, ?, ? FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
    )
    .bind(tag)
    .bind(Timestamp::now().as_millis());
    // Before the first migration the table does not exist; such a session is simply not ended by tag.
    if let Err(error) = conn.execute(register).await {
        tracing::debug!(%error, "cannot record this database session");
    }
    Ok(())
}

impl Store {
    /// Ends every database session tagged `tag` (never this store's own) and returns how many it ended: their open
    /// transactions roll back and release their locks. A no-op on SQLite.
    #[tracing::instrument(skip(self))]
    pub async fn end_sessions(&self, tag: &str) -> Result<usize> {
        if self.session_tag().is_some_and(|own| own.as_str() == tag) {
            return Ok(0);
        }
        let db = self.connection();
        let backend = db.get_database_backend();
        match self.backend() {
            Backend::Sqlite => Ok(0),
            Backend::Postgres => {
                let sql = "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
                           WHERE application_name = $1 AND pid <> pg_backend_pid()";
                let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [Value::from(tag)])).await?;
                Ok(rows.iter().filter(|row| row.try_get::<bool>("", "ended").unwrap_or(false)).count())
            }
            Backend::MySql => {
                // The client address guards against a connection id reused after a server restart.
                let sql = "SELECT s.connection_id AS id FROM scheduler_sessions s \
                           JOIN information_schema.PROCESSLIST p ON p.ID = s.connection_id AND p.HOST = s.host \
                           WHERE s.tag = ? AND s.connection_id <> CONNECTION_ID()";
                let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [Value::from(tag)])).await?;
                let mut ended = 0;
                for row in rows {
                    let id: i64 = row.try_get("", "id")?;
                    // An id, not input. A session that ended meanwhile answers "unknown thread": nothing to do.
                    match db.execute_unprepared(&format!("KILL CONNECTION {id}")).await {
                        Ok(_) => ended += 1,
                        Err(error) => tracing::debug!(%error, id, "cannot end a deposed leader's session"),
                    }
                }
                self.prune_sessions().await?;
                Ok(ended)
            }
        }
    }

    /// Forgets the recorded MySQL sessions that no longer exist.
    pub async fn prune_sessions(&self) -> Result<()> {
        if self.backend() != Backend::MySql {
            return Ok(());
        }
        let sql =
            "DELETE FROM scheduler_sessions WHERE connection_id NOT IN (SELECT ID FROM information_schema.PROCESSLIST)";
        self.connection().execute_unprepared(sql).await?;
        Ok(())
    }
}
