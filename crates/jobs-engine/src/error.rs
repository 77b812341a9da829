//! Errors of the engine's services.

use jobs_model::{ErrorKind, ExecutionId};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] jobs_model::Error),
    #[error(transparent)]
    Cron(#[from] jobs_cron::Error),
    #[error(transparent)]
    Strategy(#[from] jobs_balance::Error),
    #[error("task `{0}` not found")]
    TaskNotFound(String),
    #[error("execution {0} not found")]
    ExecutionNotFound(ExecutionId),
    #[error("task `{name}` has {open} pending or running executions; delete with `?force=true` to cancel them")]
    TaskBusy { name: String, open: usize },
    #[error("the chains would make a cycle: {0}")]
    ChainCycle(String),
    #[error("execution {id} already ended as {status}")]
    AlreadyFinal { id: ExecutionId, status: jobs_model::ExecutionStatus },
    #[error(transparent)]
    Registry(#[from] jobs_registry::Error),
    #[error(transparent)]
    Storage(#[from] jobs_storage::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(error) => error.kind(),
            Self::Cron(error) => error.kind(),
            Self::Strategy(error) => error.kind(),
            Self::TaskNotFound(_) | Self::ExecutionNotFound(_) => ErrorKind::NotFound,
            Self::AlreadyFinal { .. } | Self::TaskBusy { .. } | Self::ChainCycle(_) => ErrorKind::Conflict,
            Self::Registry(error) => error.kind(),
            Self::Storage(error) => error.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
