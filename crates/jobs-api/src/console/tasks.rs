//! `/ui/tasks`: the task list with search and filters, and the actions on a task (pause, resume, delete).

use axum::response::Response;

use crate::console::error::{PageError, PageResult};

pub(crate) async fn list() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn pause() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn resume() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn confirm_delete() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn delete() -> PageResult<Response> {
    Err(PageError::not_found("not built yet"))
}
