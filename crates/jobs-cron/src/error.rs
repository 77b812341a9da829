//! Errors of cron parsing: a bad expression or an unknown time zone.

use jobs_model::ErrorKind;

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid cron expression `{expression}`: {reason}")]
    InvalidExpression { expression: String, reason: String },
    #[error("unknown time zone `{timezone}`")]
    UnknownTimeZone { timezone: String },
}

impl Error {
    /// Both are bad user input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
