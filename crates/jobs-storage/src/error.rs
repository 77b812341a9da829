//! Storage errors: database failures, missing rows, conflicts, a deposed leader, bad config and corrupt values.

use jobs_model::ErrorKind;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The database at `address` (password removed) could not be reached or opened.
    #[error("cannot connect to database at {address}: {reason}")]
    Connect {
        address: String,
        /// The driver's message, already in `reason`, so not shown again as a source.
        reason: String,
        cause: Option<DbErr>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A planning write carried a leader epoch that is no longer the current one.
    #[error("deposed: leader epoch for `{lock_key}` is {current:?}, not {expected}")]
    Deposed { lock_key: String, expected: i64, current: Option<i64> },
    /// A bad `database.*` setting; the message names the key.
    #[error("{0}")]
    Config(String),
    /// A stored value that does not parse (an id, a status word, JSON).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A caller passed an argument the operation does not take (a bug in the caller, not bad user input).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store cannot take the write now (e.g. the batching writer stopped during shutdown).
    #[error("{0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Db(err) if is_unavailable(err) => ErrorKind::Unavailable,
            Self::Db(_) | Self::Corrupt(_) | Self::InvalidArgument(_) => ErrorKind::Internal,
            Self::Connect { .. } | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) | Self::Deposed { .. } => ErrorKind::Conflict,
            Self::Config(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display, value: impl std::fmt::Display) -> Self {
        Self::Corrupt(format!("{what} `{value}`"))
    }
}

/// Whether the database cannot take the statement now, as opposed to rejecting it: unreachable, out of
/// connections, a connection lost mid-statement, a lock wait or a session ended by the server (or by a new leader),
/// a full disk, a read-only or busy file. Retrying later can succeed.
fn is_unavailable(err: &DbErr) -> bool {
    let inner = match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => inner,
        _ => return false,
    };
    use sea_orm::sqlx::Error as Sqlx;
    match &**inner {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed | Sqlx::Protocol(_) => true,
        Sqlx::Database(db_err) => {
            if let Some(mysql) = db_err.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
                // Lock wait timeout; query interrupted or connection killed; server shutting down; disk or
                // table full; read-only server; the session ended for being idle.
                return matches!(mysql.number(), 1205 | 1317 | 1927 | 1053 | 1021 | 1114 | 1290 | 1836 | 4031);
            }
            let code = db_err.code().unwrap_or_default();
            if db_err.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // The primary result code: BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
                let primary = code.parse::<i64>().map_or(0, |code| code & 0xff);
                return matches!(primary, 5 | 6 | 8 | 10 | 13 | 14);
            }
            // PostgreSQL: connection exceptions, lock_not_available, idle-in-transaction timeout, operator
            // intervention (a terminated backend, a shutdown), insufficient resources (disk full).
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || code == "55P03"
                || code == "25P03"
        }
        _ => false,
    }
}

/// Turns a unique-constraint violation into `Conflict(message())`, and keeps any other error as it is.
pub(crate) fn conflict_on_unique(err: DbErr, message: impl FnOnce() -> String) -> Error {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(message()),
        _ => Error::Db(err),
    }
}

/// The SQLSTATE of a statement the database rejected.
pub(crate) fn sql_state(err: &DbErr) -> Option<String> {
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) = err else {
        return None;
    };
    match &**inner {
        sea_orm::sqlx::Error::Database(db_err) => db_err.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Whether a transaction lost a race it can simply run again: a unique key taken meanwhile, or a deadlock.
pub(crate) fn is_race(err: &Error) -> bool {
    let Error::Db(err) = err else {
        return false;
    };
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
        || sql_state(err).is_some_and(|code| code == "40001" || code == "40P01")
}
