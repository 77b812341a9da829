//! sea-orm entities, one per table; they never leave this crate (repositories speak `jobs_model` types).

pub(crate) mod execution;
pub(crate) mod execution_attempt;
pub(crate) mod execution_log;
pub(crate) mod executor;
pub(crate) mod executor_task;
pub(crate) mod scheduler_instance;
pub(crate) mod scheduler_leader;
pub(crate) mod task;
