//! `/ui/executors`: groups and their instances with health, maintenance on and off, and deregistration.

use crate::console::error::{PageError, PageResult};

pub(crate) async fn list() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn set_status() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn confirm_deregister() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn deregister() -> PageResult {
    Err(PageError::not_found("not built yet"))
}
