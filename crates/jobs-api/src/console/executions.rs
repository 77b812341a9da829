//! `/ui/executions/{execution}`: status, attempts as a timeline, parameters and result, the log lines (followed
//! live while the execution runs), and a cancel button while it is open.

use crate::console::error::{PageError, PageResult};

pub(crate) async fn detail() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn live() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn cancel() -> PageResult {
    Err(PageError::not_found("not built yet"))
}
