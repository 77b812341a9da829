//! The task form: create and edit, checked as the user types, with the cron expression's next fire times.

use crate::console::error::{PageError, PageResult};

pub(crate) async fn new_form() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn edit_form() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn create() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn update() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn check() -> PageResult {
    Err(PageError::not_found("not built yet"))
}

pub(crate) async fn preview() -> PageResult {
    Err(PageError::not_found("not built yet"))
}
