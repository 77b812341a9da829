//! `/ui/tasks/{task}`: a task's definition, its executions (filtered, paged) and their durations; and a manual
//! trigger with parameters.

mod history;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use jobs_model::{ErrorKind, Parameters, RetryBackoff, Task, Timestamp};

use crate::AppState;
use crate::console::error::{PageError, PageResult};
use crate::console::format::{badge, duration, pretty_json, time, time_or_dash};
use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::task_detail::history::HistoryQuery;

#[derive(Debug, Deserialize)]
pub(crate) struct DetailQuery {
    created: Option<String>,
    saved: Option<String>,
    #[serde(flatten)]
    history: HistoryQuery,
}

/// `GET /ui/tasks/{task}`: the definition, the actions, the executions; a bad filter is shown at its field (400).
pub(crate) async fn detail(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    let history = history::section(&state, &task, &query.history, Timestamp::now()).await?;
    let notice = match (query.created.is_some(), query.saved.is_some()) {
        (true, _) => Some("The task was created."),
        (false, true) => Some("The task was saved."),
        _ => None,
    };
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/tasks" { "Tasks" } " / " (task.spec.name) }
        @if let Some(notice) = notice { div.notice.ok role="status" { (notice) } }
        div.spread {
            h1 { (task.spec.name) " " (badge(if task.spec.enabled { "enabled" } else { "paused" })) }
            (actions(&session, &task))
        }
        div.grid {
            section.panel aria-labelledby="definition" {
                h2 #definition { "Definition" }
                (definition(&task))
            }
            (history.durations)
        }
        div.section { (history.executions) }
    };
    let mut response = layout::page(&state, &session, Nav::Tasks, &task.spec.name, body).await;
    if !history.valid {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

fn actions(session: &Session, task: &Task) -> Markup {
    let base = format!("/ui/tasks/{}", task.id);
    let (verb, label) = if task.spec.enabled { ("pause", "Pause") } else { ("resume", "Resume") };
    html! {
        div.row #actions {
            a.button href={ (base) "/trigger" } { "Trigger" }
            a.button.secondary href={ (base) "/edit" } { "Edit" }
            form.inline method="post" action={ (base) "/" (verb) } {
                (layout::csrf_field(session))
                input type="hidden" name="next" value=(base);
                button.secondary type="submit" { (label) }
            }
            a.button.danger href={ (base) "/delete" } { "Delete" }
        }
    }
}

fn definition(task: &Task) -> Markup {
    let spec = &task.spec;
    html! {
        dl.facts {
            dt { "Description" }
            dd { @if spec.description.is_empty() { span.muted { "none" } } @else { (spec.description) } }
            dt { "Schedule" }
            dd {
                @match &spec.cron_expression {
                    Some(cron) => { code { (cron) } " in " (spec.timezone) },
                    None => span.muted { "none: runs only when triggered" },
                }
            }
            dt { "Next fire" }
            dd {
                @if !spec.enabled { span.muted { "none while paused" } }
                @else { (time_or_dash(task.next_fire_at)) }
            }
            dt { "Mode" } dd { (spec.execution_mode) }
            dt { "Strategy" } dd { (spec.load_balance_strategy) }
            dt { "Executor group" }
            dd {
                @match &spec.executor {
                    Some(group) => span.mono { (group) },
                    None => span.muted { "any instance that declared this task" },
                }
            }
            dt { "Retries" } dd { (spec.max_retry) @if spec.max_retry > 0 { ", " (backoff(spec.retry_backoff.as_ref())) } }
            dt { "Timeout" } dd { (duration(i64::from(spec.timeout_seconds) * 1000)) }
            dt { "Misfire policy" } dd { (spec.misfire_policy) }
            @if let Some(max) = spec.max_catchup { dt { "Max catch-up" } dd { (max) " slots" } }
            dt { "Parameters" } dd { (parameters(&spec.parameters)) }
            @for (label, names) in [("On success", &spec.on_success), ("On failure", &spec.on_failure)] {
                @if !names.is_empty() {
                    dt { (label) }
                    dd { @for name in names { a.mono href={ "/ui/tasks/" (name) } { (name) } " " } }
                }
            }
            dt { "Created" } dd { (time(task.created_at)) }
            dt { "Updated" } dd { (time(task.updated_at)) }
        }
    }
}

fn backoff(backoff: Option<&RetryBackoff>) -> String {
    let seconds = |value: u32| duration(i64::from(value) * 1000);
    match backoff {
        None => "at once".to_owned(),
        Some(backoff) => match backoff.max_delay_seconds {
            Some(max) => {
                format!("{} backoff from {} up to {}", backoff.kind, seconds(backoff.delay_seconds), seconds(max))
            }
            None => format!("{} backoff of {}", backoff.kind, seconds(backoff.delay_seconds)),
        },
    }
}

fn parameters(parameters: &Parameters) -> Markup {
    if parameters.is_empty() {
        return html! { span.muted { "none" } };
    }
    html! { pre.json { (pretty_json(&serde_json::Value::Object(parameters.clone()))) } }
}

/// `GET /ui/tasks/{task}/trigger`: the parameters to run with, over the task's own.
pub(crate) async fn trigger_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    Ok(trigger_page(&state, &session, &task, "{}", None, None).await)
}

#[derive(Debug, Deserialize)]
pub(crate) struct TriggerForm {
    #[serde(default)]
    parameters: String,
}

/// `POST /ui/tasks/{task}/trigger`: runs the task now, as `POST /api/v1/tasks/{task}/trigger` does, and goes to
/// the new execution; bad JSON comes back at its field.
pub(crate) async fn trigger(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Form(form): Form<TriggerForm>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    let overrides = match parse_parameters(&form.parameters) {
        Ok(overrides) => overrides,
        Err(error) => {
            let page = trigger_page(&state, &session, &task, &form.parameters, Some(&error), None).await;
            return Ok(with_status(page, StatusCode::BAD_REQUEST));
        }
    };
    // By id: the task the form was shown for, even if another one took its name since.
    match state.engine.trigger(&task.id.to_string(), &overrides).await {
        Ok(execution) => Ok(Redirect::to(&format!("/ui/executions/{}", execution.id)).into_response()),
        Err(error) if matches!(error.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) => {
            let status =
                if error.kind() == ErrorKind::Conflict { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            let notice = error.to_string();
            let page = trigger_page(&state, &session, &task, &form.parameters, None, Some(&notice)).await;
            Ok(with_status(page, status))
        }
        Err(error) => Err(PageError::from(error)),
    }
}

/// The form's text as parameters: a JSON object; blank means none. The task form reads its own the same way.
pub(crate) fn parse_parameters(text: &str) -> Result<Parameters, String> {
    if text.trim().is_empty() {
        return Ok(Parameters::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("invalid `parameters`: must be a JSON object, such as {\"region\": \"eu\"}".to_owned()),
        Err(error) => Err(format!("invalid `parameters`: not valid JSON: {error}")),
    }
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

async fn trigger_page(
    state: &AppState,
    session: &Session,
    task: &Task,
    text: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let base = format!("/ui/tasks/{}", task.id);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/tasks" { "Tasks" } " / " a href=(base) { (task.spec.name) } " / trigger" }
        h1 { "Trigger " (task.spec.name) }
        @if let Some(notice) = notice { div.notice.bad role="alert" { (notice) } }
        @if !task.spec.enabled {
            div.notice.info { "This task is paused. A manual trigger still runs it once; its schedule stays paused." }
        }
        div.grid {
            section.panel aria-labelledby="run" {
                h2 #run { "Run it now" }
                form method="post" action={ (base) "/trigger" } {
                    (layout::csrf_field(session))
                    div.field {
                        label for="parameters" { "Parameters (a JSON object)" }
                        textarea #parameters name="parameters" rows="8" spellcheck="false"
                            aria-invalid=[error.map(|_| "true")] aria-describedby="hint-parameters err-parameters" {
                            (text)
                        }
                        p.hint #hint-parameters {
                            "Merged over the task's parameters, key by key: a key given here replaces the task's "
                            "value for that key in this run only, and the task's other keys are kept. The merge is "
                            "shallow: a nested object given here replaces the task's whole value. "
                            code { "{}" } " runs with the task's parameters as they are."
                        }
                        p.error #err-parameters role="alert" { @if let Some(error) = error { (error) } }
                    }
                    div.row {
                        button type="submit" { "Trigger now" }
                        a.button.secondary href=(base) { "Back to the task" }
                    }
                }
            }
            section.panel aria-labelledby="own" {
                h2 #own { "The task's parameters" }
                @if task.spec.parameters.is_empty() { p.muted { "The task has no parameters of its own." } }
                @else { (parameters(&task.spec.parameters)) }
            }
        }
    };
    layout::page(state, session, Nav::Tasks, &format!("Trigger {}", task.spec.name), body).await
}
