//! `/ui/tasks`: the task list with search and filters, and the actions on a task (pause, resume, delete).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use jobs_engine::TaskPatch;
use jobs_model::{ExecutionStatus, Task, TaskId};
use jobs_storage::{ExecutionFilter, TaskFilter};

use crate::AppState;
use crate::console::error::PageResult;
use crate::console::format::{badge, time_or_dash};
use crate::console::layout::{self, Nav, csrf_field};
use crate::console::session::{Session, local_path};

/// Tasks on one page of the list.
const PAGE_SIZE: u64 = 50;
/// Outcomes shown per task, newest first.
const RECENT: u64 = 5;
/// Open executions counted per status on the delete page; past this the page says "or more".
const OPEN_COUNTED: u64 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    name: String,
    /// `all`, `enabled` or `paused`.
    enabled: String,
    /// The last task id of the previous page.
    cursor: String,
    /// The name of a task just deleted, for the notice.
    deleted: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
    uri: Uri,
) -> PageResult {
    let name = query.name.trim();
    let enabled = match query.enabled.as_str() {
        "enabled" => Some(true),
        "paused" => Some(false),
        _ => None,
    };
    // A cursor that is not a task id (an edited address) starts from the first page.
    let after = TaskId::parse(&query.cursor);
    let filter =
        TaskFilter { name_contains: (!name.is_empty()).then(|| name.to_owned()), enabled, after, limit: PAGE_SIZE + 1 };
    let mut tasks = state.engine.list_tasks(&filter).await?;
    // One more than a page tells whether a next page exists.
    let more = tasks.len() as u64 > PAGE_SIZE;
    tasks.truncate(PAGE_SIZE as usize);
    let ids: Vec<TaskId> = tasks.iter().map(|task| task.id).collect();
    let recent = state.engine.recent_statuses(&ids, RECENT).await?;
    let any_task = !tasks.is_empty()
        || !state.engine.list_tasks(&TaskFilter { limit: 1, ..TaskFilter::default() }).await?.is_empty();
    let here = uri.path_and_query().map_or("/ui/tasks", |path| path.as_str());
    let page_link = |cursor: Option<TaskId>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("name", name).append_pair("enabled", enabled_word(enabled));
        if let Some(cursor) = cursor {
            query.append_pair("cursor", &cursor.to_string());
        }
        format!("/ui/tasks?{}", query.finish())
    };
    let next_page = more.then(|| tasks.last().map(|task| page_link(Some(task.id)))).flatten();
    let first_page = page_link(None);

    let body = html! {
        div.spread {
            h1 { "Tasks" }
            a.button href="/ui/tasks/new" { "New task" }
        }
        @if let Some(deleted) = query.deleted.as_deref().filter(|name| jobs_model::validate::name("name", name).is_ok()) {
            div.notice.ok role="status" { "Task " strong { (deleted) } " was deleted. Its execution history stays." }
        }
        form.filters method="get" action="/ui/tasks" role="search" hx-get="/ui/tasks"
            hx-trigger="input changed delay:300ms, search" hx-select="#task-results" hx-target="#task-results"
            hx-swap="outerHTML" hx-push-url="true" {
            div.field.grow {
                label for="name" { "Name" }
                input #name type="search" name="name" value=(name) placeholder="part of a task name" autocomplete="off";
            }
            div.field {
                label for="enabled" { "State" }
                select #enabled name="enabled" {
                    @for (value, text) in [("all", "All"), ("enabled", "Enabled"), ("paused", "Paused")] {
                        option value=(value) selected[enabled_word(enabled) == value] { (text) }
                    }
                }
            }
            button.secondary type="submit" { "Search" }
        }
        div #task-results {
            @if tasks.is_empty() {
                (empty_state(any_task, name, enabled, after.is_some()))
            } @else {
                div.table-wrap { (table(&session, &tasks, &recent, here)) }
            }
            @if let Some(next_page) = &next_page {
                nav.pager aria-label="Pages" {
                    @if after.is_some() { a href=(first_page) { "First page" } }
                    a href=(next_page) { "Next page" }
                }
            } @else if after.is_some() {
                nav.pager aria-label="Pages" { a href=(first_page) { "First page" } }
            }
        }
    };
    Ok(layout::page(&state, &session, Nav::Tasks, "Tasks", body).await)
}

fn enabled_word(enabled: Option<bool>) -> &'static str {
    match enabled {
        Some(true) => "enabled",
        Some(false) => "paused",
        None => "all",
    }
}

fn empty_state(any_task: bool, name: &str, enabled: Option<bool>, paged: bool) -> Markup {
    if !any_task {
        return html! {
            div.empty.panel {
                p { strong { "No tasks yet." } }
                p { "Create one with the " a href="/ui/tasks/new" { "New task" } " button, or let an executor declare its tasks: the example executor declares demo tasks such as " code { "daily_report" } "." }
                pre { "cargo run -p example-executor" }
            }
        };
    }
    if paged && name.is_empty() && enabled.is_none() {
        return html! { div.empty.panel { p { "No more tasks." } a href="/ui/tasks" { "Back to the first page" } } };
    }
    html! {
        div.empty.panel {
            p {
                "No " @if let Some(enabled) = enabled { (enabled_word(Some(enabled))) " " } "task"
                @if !name.is_empty() { " has a name containing " strong { "“" (name) "”" } }
                @else { " matches" } "."
            }
            a href="/ui/tasks" { "Clear the search" }
        }
    }
}

fn table(session: &Session, tasks: &[Task], recent: &HashMap<TaskId, Vec<ExecutionStatus>>, here: &str) -> Markup {
    html! {
        table #task-table.stack {
            thead { tr {
                th { "Name" } th { "Schedule" } th.hide-phone { "Mode" } th.hide-phone { "Strategy" }
                th.hide-phone { "Next fire" } th { "State" } th.hide-phone { "Last 5" } th { "Actions" }
            } }
            tbody { @for task in tasks { (row(session, task, recent.get(&task.id).map_or(&[][..], Vec::as_slice), here)) } }
        }
    }
}

fn row(session: &Session, task: &Task, recent: &[ExecutionStatus], here: &str) -> Markup {
    let spec = &task.spec;
    let href = format!("/ui/tasks/{}", task.id);
    html! {
        tr {
            td data-label="Name" { a href=(href) { (spec.name) } }
            td data-label="Schedule" {
                @match &spec.cron_expression {
                    Some(expression) => { span.mono.nowrap { (expression) } br; span.small.muted { (spec.timezone) } },
                    None => span.muted { "manual only" },
                }
            }
            td.hide-phone data-label="Mode" { (spec.execution_mode.as_str()) }
            td.hide-phone data-label="Strategy" { (spec.load_balance_strategy) }
            td.nowrap data-label="Next fire" { (time_or_dash(task.next_fire_at)) }
            td data-label="State" { (badge(if spec.enabled { "enabled" } else { "paused" })) }
            td data-label="Last 5" {
                @if recent.is_empty() { span.small.muted { "no runs" } }
                @else {
                    span.dots title="newest first" {
                        @for status in recent {
                            span class={ "dot s-" (status.as_str()) } title=(status.as_str()) { span.sr-only { (status.as_str()) " " } }
                        }
                    }
                }
            }
            td { div.actions {
                a.button.secondary href={ (href) "/trigger" } { "Trigger" span.sr-only { " " (spec.name) } }
                form.inline method="post" action={ (href) @if spec.enabled { "/pause" } @else { "/resume" } } {
                    (csrf_field(session))
                    input type="hidden" name="next" value=(here);
                    button.secondary type="submit" {
                        @if spec.enabled { "Pause" } @else { "Resume" } span.sr-only { " " (spec.name) }
                    }
                }
                a.button.secondary href={ (href) "/delete" } { "Delete" span.sr-only { " " (spec.name) } }
            } }
        }
    }
}

/// The pause and resume forms: where to go back to.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BackForm {
    next: Option<String>,
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Form(form): Form<BackForm>,
) -> PageResult {
    set_enabled(&state, &key, false, form.next.as_deref()).await
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Form(form): Form<BackForm>,
) -> PageResult {
    set_enabled(&state, &key, true, form.next.as_deref()).await
}

/// Pauses or resumes exactly as `POST /api/v1/tasks/{task}/pause|resume` do, then goes back.
async fn set_enabled(state: &AppState, key: &str, enabled: bool, next: Option<&str>) -> PageResult {
    let patch = TaskPatch { enabled: Some(enabled), ..TaskPatch::default() };
    let task = state.engine.patch_task(key, patch).await?;
    let fallback = format!("/ui/tasks/{}", task.id);
    Ok(Redirect::to(local_path(next).unwrap_or(&fallback)).into_response())
}

pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    confirmation(&state, &session, &task, None, StatusCode::OK).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeleteForm {
    force: Option<String>,
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Form(form): Form<DeleteForm>,
) -> PageResult<Response> {
    let force = form.force.is_some_and(|value| value != "false");
    match state.engine.delete_task(&key, force).await {
        Ok(task) => {
            let query =
                url::form_urlencoded::Serializer::new(String::new()).append_pair("deleted", &task.spec.name).finish();
            Ok(Redirect::to(&format!("/ui/tasks?{query}")).into_response())
        }
        Err(jobs_engine::Error::TaskBusy { open, .. }) => {
            let task = state.engine.find_task(&key).await?;
            let refused = format!(
                "Not deleted: the task has {open} pending or running execution{}. Tick the box below to cancel \
                 them and delete it.",
                if open == 1 { "" } else { "s" }
            );
            confirmation(&state, &session, &task, Some(&refused), StatusCode::CONFLICT).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The delete confirmation, with the reason the last attempt was refused.
async fn confirmation(
    state: &AppState,
    session: &Session,
    task: &Task,
    refused: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let (mut open, mut capped) = (0, false);
    for status in [ExecutionStatus::Pending, ExecutionStatus::Running] {
        let filter =
            ExecutionFilter { task_id: Some(task.id), status: Some(status), limit: OPEN_COUNTED, ..Default::default() };
        let found = state.engine.list_executions(&filter).await?.len();
        capped |= found as u64 >= OPEN_COUNTED;
        open += found;
    }
    let href = format!("/ui/tasks/{}", task.id);
    let name = &task.spec.name;
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/tasks" { "Tasks" } " / " a href=(href) { (name) } }
        div.panel.confirm {
            h1 { "Delete " (name) "?" }
            p { "The task stops firing and can no longer be triggered. Its execution history stays readable." }
            @if let Some(refused) = refused { div.notice.bad role="alert" { (refused) } }
            form method="post" action={ (href) "/delete" } {
                (csrf_field(session))
                @if open > 0 {
                    div.notice.info {
                        "This task has " (open) @if capped { " or more" }
                        " pending or running execution" @if open != 1 { "s" } "."
                    }
                    div.field {
                        label.check for="force" {
                            input #force type="checkbox" name="force" value="true" aria-describedby="hint-force";
                            "Cancel the open executions and delete"
                        }
                        p.hint #hint-force { "Without this, the deletion is refused while the task has pending or running executions; with it, they are cancelled." }
                    }
                } @else {
                    p.muted { "It has no pending or running executions." }
                }
                div.row {
                    button.danger type="submit" { "Delete" }
                    a.button.secondary href=(href) { "Cancel" }
                }
            }
        }
    };
    let mut response = layout::page(state, session, Nav::Tasks, &format!("Delete {name}"), body).await;
    *response.status_mut() = status;
    Ok(response)
}
