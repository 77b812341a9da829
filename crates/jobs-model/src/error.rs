//! The error kind every crate maps its errors to, and this crate's own error.

/// What kind of failure an error is; only the HTTP layer turns it into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidInput,
    NotFound,
    Conflict,
    Unavailable,
    /// Credentials are missing or wrong: an API token or a request signature.
    Unauthorized,
    Internal,
}

/// A validation failure: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }

    /// The field this error is about.
    pub fn field(&self) -> &str {
        match self {
            Self::Invalid { field, .. } => field,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
