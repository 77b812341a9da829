//! The web console: server-rendered pages over the engine's services, at `/` and under `/ui/`.
//!
//! Pages are maud templates compiled into the binary; the stylesheet, htmx and a small script of our own are
//! embedded too (`assets`), so the console needs no build step and no network. Every page reads and every form
//! works without JavaScript; htmx only refreshes parts of pages (live logs, the cron preview, inline checks).
//! The handlers call the same `Engine` services as the REST API, and errors go through `ApiError`, so the rules
//! and the status codes are the API's.

mod assets;
mod charts;
mod error;
mod executions;
mod executors;
mod format;
mod layout;
mod overview;
mod session;
mod task_detail;
mod task_form;
mod tasks;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::{AppState, AuthConfig};

/// The console's routes, behind the session gate (see [`session`]).
pub(crate) fn router(auth: &AuthConfig, https: bool) -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/ui", get(|| async { Redirect::to("/") }))
        .route("/ui/", get(|| async { Redirect::to("/") }))
        .route("/ui/tasks", get(tasks::list).post(task_form::create))
        .route("/ui/tasks/new", get(task_form::new_form))
        .route("/ui/tasks/check", post(task_form::check))
        .route("/ui/tasks/{task}", get(task_detail::detail).post(task_form::update))
        .route("/ui/tasks/{task}/edit", get(task_form::edit_form))
        .route("/ui/tasks/{task}/pause", post(tasks::pause))
        .route("/ui/tasks/{task}/resume", post(tasks::resume))
        .route("/ui/tasks/{task}/delete", get(tasks::confirm_delete).post(tasks::delete))
        .route("/ui/tasks/{task}/trigger", get(task_detail::trigger_form).post(task_detail::trigger))
        .route("/ui/executions/{execution}", get(executions::detail))
        .route("/ui/executions/{execution}/live", get(executions::live))
        .route("/ui/executions/{execution}/cancel", post(executions::cancel))
        .route("/ui/executors", get(executors::list))
        .route("/ui/executors/{executor}/status", post(executors::set_status))
        .route("/ui/executors/{executor}/deregister", get(executors::confirm_deregister).post(executors::deregister))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/{version}/{file}", get(assets::serve))
        .route("/ui/{*rest}", get(error::not_found))
        .layer(axum::middleware::from_fn_with_state(session::Gate::new(auth, https), session::gate))
}
