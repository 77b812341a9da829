//! Errors of cron parsing: a bad expression, an unknown time zone, or a one-shot instant already past.

use jobs_model::ErrorKind;

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid cron expression `{expression}`: {reason}")]
    InvalidExpression { expression: String, reason: String },
    #[error("unknown time zone `{timezone}`")]
    UnknownTimeZone { timezone: String },
    #[error(
        "invalid cron expression `{expression}`: its instant has passed; set `misfire_policy` to `fire_once` to fire \
         it once now"
    )]
    PastInstant { expression: String },
}

impl Error {
    /// All are bad user input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
