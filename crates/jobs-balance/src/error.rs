//! Errors of the strategy registry.

use jobs_model::ErrorKind;

/// A strategy name the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("unknown load balance strategy `{name}` (expected one of {})", .expected.join(", "))]
    UnknownStrategy { name: String, expected: Vec<&'static str> },
}

impl Error {
    /// A task or config naming an unknown strategy is bad input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
