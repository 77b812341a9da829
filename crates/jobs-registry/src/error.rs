//! Errors of the registry.

use jobs_model::ErrorKind;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] jobs_model::Error),
    #[error("executor {0} not found")]
    NotFound(jobs_model::ExecutorId),
    #[error(transparent)]
    Storage(#[from] jobs_storage::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(error) => error.kind(),
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Storage(error) => error.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
