//! `/ui/tasks/{task}`: a task's definition, its executions (filtered, paged) and their durations; and a manual
//! trigger with parameters.

use crate::console::error::{PageError, PageResult};

pub(crate) async fn detail() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn trigger_form() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn trigger() -> PageResult {
    Err(PageError::not_found("not built yet"))
}
