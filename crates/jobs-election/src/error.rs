//! Errors of the election: the store, a bad setting, and the dedicated lock connection.

use std::time::Duration;

use jobs_model::ErrorKind;
use sea_orm::sqlx;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] jobs_storage::Error),
    /// A bad election setting; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The lock connection to `address` (password removed) could not be opened.
    #[error("cannot open the lock connection to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: sqlx::Error,
    },
    /// A query on the lock connection failed; the connection is then given up.
    #[error("lock query `{what}` failed: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database answered something the election cannot trust (e.g. `GET_LOCK` answering NULL).
    #[error("lock query `{what}` answered {answer}")]
    Unexpected { what: &'static str, answer: String },
    /// A lock query, a connection attempt or an epoch bump did not finish in time.
    #[error("{what} did not answer within {} ms", .after.as_millis())]
    Timeout { what: &'static str, after: Duration },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Storage(error) => error.kind(),
            Self::Config(_) => ErrorKind::InvalidInput,
            Self::Connect { .. } | Self::Query { .. } | Self::Timeout { .. } => ErrorKind::Unavailable,
            Self::Unexpected { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
