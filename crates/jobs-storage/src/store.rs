//! The `Store`: one connection pool, how it is opened (creating the database if needed), and migrations under a lock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jobs_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, IsolationLevel,
    RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

use crate::config::redact_url;
use crate::error::sql_state;
use crate::sessions::{self, SessionTag};
use crate::{Backend, DatabaseConfig, Error, Result};

/// How long opening a connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits for another writer before answering "busy".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a starting instance waits for another one's migrations.
const MIGRATE_LOCK_SECONDS: i64 = 60;

/// Connections kept apart for the control plane (see [`Store::control_plane`]).
const CONTROL_CONNECTIONS: u32 = 2;

/// The database of `jobs`: a connection pool for the work, a small one for the control plane, plus the repositories
/// (`impl Store` blocks in the other modules).
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// The control plane's pool: executor heartbeats and registration, instance presence, readiness. On SQLite, one
    /// process with one writer at a time, it is the work pool.
    control: DatabaseConnection,
    backend: Backend,
    url: Arc<Url>,
    tag: Option<SessionTag>,
    /// How long a statement may wait for a pooled connection.
    acquire_timeout: Duration,
    /// Chained executions written and not yet counted.
    pub(crate) chained: crate::chains::ChainCount,
}

/// A pool's connections at one moment (see [`Store::pool_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Connections open and idle.
    pub idle: u32,
}

/// The URL a store was opened with; only the redacted form is ever shown.
struct Url {
    full: String,
    redacted: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).field("url", &self.url.redacted).finish()
    }
}

impl Store {
    /// Opens the configured database, creating it (MySQL, PostgreSQL) or its folder (SQLite) when missing.
    #[tracing::instrument(skip_all)]
    pub async fn connect(config: &DatabaseConfig) -> Result<Store> {
        let full = config.resolved_url()?;
        let backend = Backend::from_url(&full)?;
        let redacted = redact_url(&full);
        if backend == Backend::Sqlite {
            prepare_sqlite_file(&full, &redacted)?;
        }
        let pool = Pool {
            max_connections: config.max_connections.max(1),
            acquire_timeout: config.acquire_timeout.get(),
            tag: None,
        };
        let db = match open(&full, backend, &pool).await {
            Ok(db) => db,
            Err(Error::Connect { cause: Some(err), .. }) if is_unknown_database(&err) => {
                create_database(&full, backend).await?;
                open(&full, backend, &pool).await?
            }
            Err(err) => return Err(err),
        };
        let control = open_control(&full, backend, &pool, &db).await?;
        tracing::info!(url = %redacted, %backend, "connected to database");
        if verifies_no_host_name(&full) {
            tracing::warn!(
                url = %redacted,
                "VERIFY_CA / verify-ca checks no host name, and the driver trusts the public CAs besides the one in \
                 the URL: any publicly trusted certificate passes; use VERIFY_IDENTITY / verify-full"
            );
        }
        Ok(Store {
            db,
            control,
            backend,
            url: Arc::new(Url { full, redacted }),
            tag: None,
            acquire_timeout: pool.acquire_timeout,
            chained: Default::default(),
        })
    }

    /// This store's pool reopened with every session tagged `tag` (see [`SessionTag`]); call it after migrating, so
    /// that every session can record itself. SQLite keeps its pool (one process, nothing to end).
    pub async fn tagged(self, config: &DatabaseConfig, tag: SessionTag) -> Result<Store> {
        if self.backend == Backend::Sqlite {
            return Ok(Store { tag: Some(tag), ..self });
        }
        let pool = Pool {
            max_connections: config.max_connections.max(1),
            acquire_timeout: config.acquire_timeout.get(),
            tag: Some(&tag),
        };
        let db = open(&self.url.full, self.backend, &pool).await?;
        let control = open_control(&self.url.full, self.backend, &pool, &db).await?;
        self.db.close_by_ref().await.ok();
        if self.backend != Backend::Sqlite {
            self.control.close_by_ref().await.ok();
        }
        tracing::info!(session_tag = %tag, "database sessions tagged");
        Ok(Store { db, control, tag: Some(tag), ..self })
    }

    /// This store on its control-plane pool: a few connections that the work (planner, dispatch, callbacks, API
    /// lists) never takes, so that lease-adjacent writes (executor heartbeats and registration, this instance's
    /// presence, readiness checks) do not queue behind a saturated work pool. Anything else keeps the work pool.
    pub fn control_plane(&self) -> Store {
        Store { db: self.control.clone(), ..self.clone() }
    }

    /// The tag of this store's sessions, if it was opened with one (see [`Store::tagged`]).
    pub fn session_tag(&self) -> Option<&SessionTag> {
        self.tag.as_ref()
    }

    /// How long a statement may wait for a pooled connection before the database counts as unavailable.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// One trivial query: whether the database answers now.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.db.ping().await?)
    }

    /// Applies pending migrations; instances starting together take turns under a database lock.
    #[tracing::instrument(skip_all, fields(url = %self.url.redacted))]
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => Migrator::up(&self.db, None).await?,
            Backend::MySql | Backend::Postgres => {
                // Session locks belong to one connection, so everything runs on a pool of exactly one.
                let conn = open(&self.url.full, self.backend, &Pool::single()).await?;
                let result = self.migrate_locked(&conn).await;
                conn.close().await.ok();
                result?;
            }
        }
        Ok(())
    }

    async fn migrate_locked(&self, conn: &DatabaseConnection) -> Result<()> {
        let key = migrate_lock_key(&self.url.full);
        let backend = conn.get_database_backend();
        let timed_out = || Error::Conflict(format!("timed out waiting for the migration lock `{key}`"));
        let unlock = match self.backend {
            Backend::MySql => {
                let lock = "SELECT GET_LOCK(?, ?) AS locked";
                let values: [Value; 2] = [key.clone().into(), MIGRATE_LOCK_SECONDS.into()];
                let row = conn.query_one_raw(Statement::from_sql_and_values(backend, lock, values)).await?;
                // 1: locked; 0: timed out; NULL: an error.
                let locked = match row {
                    Some(row) => row.try_get::<Option<i64>>("", "locked")?,
                    None => None,
                };
                if locked != Some(1) {
                    return Err(timed_out());
                }
                "SELECT RELEASE_LOCK(?)"
            }
            _ => {
                conn.execute_unprepared(&format!("SET lock_timeout = '{MIGRATE_LOCK_SECONDS}s'")).await?;
                let lock = "SELECT pg_advisory_lock(hashtext($1))";
                // 55P03 lock_not_available: `lock_timeout` passed.
                match conn.execute_raw(Statement::from_sql_and_values(backend, lock, [key.clone().into()])).await {
                    Ok(_) => {}
                    Err(err) if sql_state(&err).as_deref() == Some("55P03") => return Err(timed_out()),
                    Err(err) => return Err(err.into()),
                }
                "SELECT pg_advisory_unlock(hashtext($1))"
            }
        };
        tracing::debug!(%key, "holding the migration lock");
        let result = Migrator::up(conn, None).await;
        let released = conn.execute_raw(Statement::from_sql_and_values(backend, unlock, [key.clone().into()])).await;
        result?;
        released?;
        Ok(())
    }

    /// The URL this store was opened with, password included, for opening another store on the same database.
    #[cfg(test)]
    pub(crate) fn full_url(&self) -> &str {
        &self.url.full
    }

    /// How many connections this store's pool holds now, and how many of them are idle (for the metrics).
    pub fn pool_usage(&self) -> PoolUsage {
        let (open, idle) = match self.backend {
            Backend::MySql => {
                let pool = self.db.get_mysql_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolUsage { open, idle: u32::try_from(idle).unwrap_or(u32::MAX) }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL this store was opened with, without its password.
    pub fn url_redacted(&self) -> &str {
        &self.url.redacted
    }

    /// Closes the pools; clones of this store cannot query afterwards.
    pub async fn close(&self) -> Result<()> {
        if self.backend != Backend::Sqlite {
            self.control.close_by_ref().await?;
        }
        Ok(self.db.close_by_ref().await?)
    }

    /// Begins a transaction at read committed on MySQL and PostgreSQL (no gap locks), a write transaction on SQLite.
    pub(crate) async fn begin_read_committed(&self) -> Result<DatabaseTransaction> {
        if self.backend() == Backend::Sqlite {
            return self.begin().await;
        }
        Ok(self.db.begin_with_config(Some(IsolationLevel::ReadCommitted), None).await?)
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so that a read-then-write never fails half-way).
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }
}

/// A pooled connection idle this long is pinged before it is handed out.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The size and manners of a pool.
pub(crate) struct Pool<'a> {
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) tag: Option<&'a SessionTag>,
}

impl Pool<'_> {
    /// One untagged connection, for administrative work (migrations, creating a database).
    pub(crate) fn single() -> Self {
        Self { max_connections: 1, acquire_timeout: CONNECT_TIMEOUT, tag: None }
    }
}

/// Opens the control plane's pool beside the work pool `db` (SQLite shares `db`: one writer at a time anyway).
async fn open_control(
    url: &str,
    backend: Backend,
    work: &Pool<'_>,
    db: &DatabaseConnection,
) -> Result<DatabaseConnection> {
    if backend == Backend::Sqlite {
        return Ok(db.clone());
    }
    let pool = Pool { max_connections: CONTROL_CONNECTIONS, acquire_timeout: work.acquire_timeout, tag: work.tag };
    open(url, backend, &pool).await
}

/// Opens a pool on `url`, failing within `CONNECT_TIMEOUT` with an error that names the redacted address.
pub(crate) async fn open(url: &str, backend: Backend, pool: &Pool<'_>) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    // A ping on every checkout is a round trip before every statement of the hot path; only a connection idle long
    // enough for a server, proxy or firewall to have dropped it is pinged first (a busy one fails on use, and the
    // pool discards it).
    options
        .max_connections(pool.max_connections)
        .sqlx_logging(false)
        .test_before_acquire_if_idle_for(IDLE_PING_AFTER)
        // While the database is down, a statement fails after this long instead of queueing for a connection.
        .acquire_timeout(pool.acquire_timeout);
    sessions::configure(&mut options, backend, pool.tag);
    if backend == Backend::Sqlite {
        if is_sqlite_memory(url) {
            // Every connection to `:memory:` is a database of its own: keep exactly one, forever.
            options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .create_if_missing(true)
            });
        }
        if !is_sqlite_memory(url) {
            // A connection handed back inside a transaction (a rollback that failed, as on a full disk) would keep
            // the database's write lock in the pool, and the next statement on it would run inside that dead
            // transaction, answered and never committed: close it instead. The ping first runs the rollback of a
            // transaction dropped unfinished. (The one connection of an in-memory database is the database.)
            options.map_sqlx_sqlite_pool_opts(|pool| {
                pool.after_release(|conn, _| {
                    Box::pin(async move {
                        sea_orm::sqlx::Connection::ping(&mut *conn).await?;
                        Ok(!sea_orm::sqlx::Connection::is_in_transaction(conn))
                    })
                })
            });
        }
    }
    let connect_error =
        |reason: String, cause: Option<DbErr>| Error::Connect { address: redact_url(url), reason, cause };
    match tokio::time::timeout(CONNECT_TIMEOUT, Database::connect(options)).await {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(err)) => Err(connect_error(reason(&err, backend), Some(err))),
        // The pool retries refused connections (a server starting up) until this deadline.
        Err(_) => Err(connect_error(
            format!("no connection within {}s (server down, refusing or unreachable)", CONNECT_TIMEOUT.as_secs()),
            None,
        )),
    }
}

/// The driver's own message, without sea-orm's "Connection Error:" wrapping; a refused server certificate is
/// said to be one, in place of the driver's "error communicating with database".
fn reason(err: &DbErr, backend: Backend) -> String {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(inner)) => {
            refused_certificate(inner, backend).unwrap_or_else(|| inner.to_string())
        }
        DbErr::Conn(RuntimeErr::Internal(message)) => message.clone(),
        other => other.to_string(),
    }
}

/// The drivers' TLS failure in words an operator can act on; the URL option that adds a CA is named.
fn refused_certificate(err: &sea_orm::sqlx::Error, backend: Backend) -> Option<String> {
    let ca_option = if backend == Backend::MySql { "ssl-ca" } else { "sslrootcert" };
    jobs_model::tls::tls_failure(err, ca_option)
}

/// Whether the URL asks for a CA check without a host name check (`ssl-mode=VERIFY_CA`, `sslmode=verify-ca`).
fn verifies_no_host_name(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else { return false };
    url::form_urlencoded::parse(query.as_bytes()).any(|(key, value)| {
        matches!(key.as_ref(), "ssl-mode" | "sslmode") && value.replace('-', "_").eq_ignore_ascii_case("verify_ca")
    })
}

/// Whether connecting failed only because the database does not exist yet.
fn is_unknown_database(err: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(inner)) = err else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db_err) = &**inner else {
        return false;
    };
    if let Some(mysql) = db_err.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        return mysql.number() == 1049;
    }
    db_err.code().as_deref() == Some("3D000")
}

/// The parts of a server URL: `(url without the database, database name)`.
pub(crate) fn split_database(url: &str, backend: Backend) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let path_start = rest.find('/')?;
    let (authority, path) = rest.split_at(path_start);
    let (database, query) = match path[1..].split_once('?') {
        Some((database, query)) => (database, format!("?{query}")),
        None => (&path[1..], String::new()),
    };
    if database.is_empty() {
        return None;
    }
    // PostgreSQL needs some database to connect to; `postgres` always exists.
    let server_path = if backend == Backend::Postgres { "/postgres" } else { "" };
    Some((format!("{scheme}://{authority}{server_path}{query}"), database.to_owned()))
}

/// Creates the database a MySQL or PostgreSQL URL names, tolerating another instance doing the same.
async fn create_database(url: &str, backend: Backend) -> Result<()> {
    let Some((server_url, database)) = split_database(url, backend) else {
        return Err(Error::Config(format!("invalid `database.url`: `{}` names no database", redact_url(url))));
    };
    tracing::info!(%database, server = %redact_url(&server_url), "creating database");
    let server = open(&server_url, backend, &Pool::single()).await?;
    let result = create_database_on(&server, backend, &database).await;
    server.close().await.ok();
    result.map_err(|err| Error::Connect {
        address: redact_url(url),
        reason: format!("cannot create database `{database}`: {}", reason(&err, backend)),
        cause: Some(err),
    })
}

async fn create_database_on(server: &DatabaseConnection, backend: Backend, database: &str) -> Result<(), DbErr> {
    match backend {
        Backend::MySql => {
            let sql = format!("CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4", quote(backend, database));
            server.execute_unprepared(&sql).await.map(drop)
        }
        _ => match server.execute_unprepared(&format!("CREATE DATABASE {}", quote(backend, database))).await {
            Ok(_) => Ok(()),
            // 42P04 duplicate_database; 23505: two creations raced on pg_database's unique index.
            Err(err) if sql_state(&err).is_some_and(|code| code == "42P04" || code == "23505") => Ok(()),
            Err(err) => Err(err),
        },
    }
}

/// Quotes an identifier for `CREATE DATABASE` / `DROP DATABASE`.
pub(crate) fn quote(backend: Backend, name: &str) -> String {
    match backend {
        Backend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// MySQL lock names are global to the server (and at most 64 characters), so the name includes the database.
fn migrate_lock_key(url: &str) -> String {
    let database = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map_or("", |(_, path)| path.split('?').next().unwrap_or_default());
    format!("jobs_migrate_{database}").chars().take(64).collect()
}

fn sqlite_path(url: &str) -> &str {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.split('?').next().unwrap_or_default()
}

fn is_sqlite_memory(url: &str) -> bool {
    let path = sqlite_path(url);
    path.is_empty() || path == ":memory:" || url.contains("mode=memory")
}

/// Creates the folder of a SQLite database file.
fn prepare_sqlite_file(url: &str, redacted: &str) -> Result<()> {
    if is_sqlite_memory(url) {
        return Ok(());
    }
    let path = std::path::Path::new(sqlite_path(url));
    let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|err| Error::Connect {
        address: redacted.to_owned(),
        reason: format!("cannot create folder `{}`: {err}", parent.display()),
        cause: None,
    })
}

#[cfg(test)]
mod tests;
