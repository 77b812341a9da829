//! `/ui/executions/{execution}`: status, attempts as a timeline, parameters and result, the log lines (followed
//! live while the execution runs), and a cancel button while it is open.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use jobs_model::{Attempt, Execution, ExecutionId, ExecutorId, LogLine, Timestamp};

use crate::AppState;
use crate::console::error::PageResult;
use crate::console::format::{self, badge, duration, elapsed, pretty_json, time, time_or_dash};
use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::handlers::parse_id;

/// The most log lines a page shows; the API pages through the rest.
const LOG_LINES: u64 = 1000;
/// The notice shown after a cancel that came too late (`?notice=already-final`).
const ALREADY_FINAL: &str = "already-final";

/// Everything the page shows, read once per render.
struct Snapshot {
    execution: Execution,
    attempts: Vec<Attempt>,
    logs: Vec<LogLine>,
    /// Executor ids to instance names, for the instances still registered.
    instances: HashMap<ExecutorId, String>,
    /// The executions this one's end triggered through its task's chains.
    downstream: Vec<ExecutionId>,
}

/// A path segment that is not an execution id names no execution: a 404, like an unknown one.
fn execution_id(text: &str) -> PageResult<ExecutionId> {
    Ok(parse_id("execution", text, ExecutionId::parse)?)
}

async fn snapshot(state: &AppState, id: ExecutionId) -> PageResult<Snapshot> {
    let (execution, attempts) = state.engine.get_execution(id).await?;
    let logs = state.engine.logs(id, None, LOG_LINES).await?;
    let instances = instance_names(state).await?;
    let downstream = state.engine.downstream_of(id).await?;
    Ok(Snapshot { execution, attempts, logs, instances, downstream })
}

/// Executor ids to the instance ids people know them by, looked up once per page.
pub(crate) async fn instance_names(state: &AppState) -> PageResult<HashMap<ExecutorId, String>> {
    let views = state.engine.executors(None, None).await?;
    Ok(views.into_iter().map(|view| (view.executor.id, view.executor.instance_id)).collect())
}

/// An executor's instance id, or its own id once it has deregistered.
pub(crate) fn instance(instances: &HashMap<ExecutorId, String>, id: Option<ExecutorId>) -> Markup {
    match id {
        Some(id) => match instances.get(&id) {
            Some(name) => html! { span.mono { (name) } },
            None => html! { span.mono.muted title="no longer registered" { (id) } },
        },
        None => html! { span.muted { "—" } },
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DetailQuery {
    notice: Option<String>,
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let snapshot = snapshot(&state, execution_id(&id)?).await?;
    let execution = &snapshot.execution;
    let title = format!("Execution of {}", execution.task_name);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/tasks" { "Tasks" } " / "
            a href={ "/ui/tasks/" (execution.task_id) } { (execution.task_name) } " / execution"
        }
        div.spread {
            h1 { "Execution of " a href={ "/ui/tasks/" (execution.task_id) } { (execution.task_name) } }
            span.mono.small.muted { (execution.id) }
        }
        @if query.notice.as_deref() == Some(ALREADY_FINAL) {
            div.notice.info role="status" {
                "This execution had already ended as " (execution.status) ", so there was nothing to cancel."
            }
        }
        (live_markup(&session, &snapshot, Timestamp::now()))
    };
    Ok(layout::page(&state, &session, Nav::Tasks, &title, body).await)
}

/// `GET /ui/executions/{id}/live`: the part of the page that changes, for htmx to swap in every 2 s.
pub(crate) async fn live(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult {
    let snapshot = snapshot(&state, execution_id(&id)?).await?;
    Ok(layout::respond(live_markup(&session, &snapshot, Timestamp::now())))
}

/// `POST /ui/executions/{id}/cancel`: back to the page; one that already ended says so there.
pub(crate) async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let id = execution_id(&id)?;
    match state.engine.cancel_execution(id).await {
        Ok(_) => Ok(Redirect::to(&format!("/ui/executions/{id}")).into_response()),
        Err(jobs_engine::Error::AlreadyFinal { .. }) => {
            Ok(Redirect::to(&format!("/ui/executions/{id}?notice={ALREADY_FINAL}")).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// The live part: while the execution is open it asks for itself again every 2 s; once final it stops asking.
fn live_markup(session: &Session, snapshot: &Snapshot, now: Timestamp) -> Markup {
    let execution = &snapshot.execution;
    let open = !execution.status.is_final();
    let href = format!("/ui/executions/{}", execution.id);
    let live_href = format!("{href}/live");
    html! {
        div #live hx-get=[open.then_some(&live_href)] hx-trigger=[open.then_some("every 2s")]
            hx-swap=[open.then_some("outerHTML")] {
            div.grid {
                section.panel aria-labelledby="status-heading" {
                    div.spread {
                        h2 #status-heading { "Status" }
                        (badge(execution.status.as_str()))
                    }
                    (facts(snapshot, now))
                    @if open {
                        div.row.section {
                            form.inline method="post" action={ (href) "/cancel" } {
                                (layout::csrf_field(session))
                                // Ids let htmx give the focus back after each refresh of this block.
                                button.danger #cancel-execution type="submit" { "Cancel execution" }
                            }
                            a.button.secondary #refresh href=(href) { "Refresh" }
                        }
                    }
                }
                section.panel aria-labelledby="attempts-heading" {
                    h2 #attempts-heading { "Attempts" }
                    (timeline(snapshot))
                }
            }
            div.grid.section {
                section.panel aria-labelledby="parameters-heading" {
                    h2 #parameters-heading { "Parameters" }
                    pre.json #parameters { (pretty_json(&serde_json::Value::Object(execution.parameters.clone()))) }
                }
                section.panel aria-labelledby="result-heading" {
                    h2 #result-heading { "Result" }
                    @match &execution.result {
                        Some(result) => pre.json #result { (pretty_json(result)) },
                        None if open => p.muted { "The result shows here when the execution ends." },
                        None => p.muted { "The handler returned no result." },
                    }
                }
            }
            section.panel.section aria-labelledby="logs-heading" {
                h2 #logs-heading { "Log lines" }
                (log_lines(&snapshot.logs, &href, open))
            }
        }
    }
}

fn facts(snapshot: &Snapshot, now: Timestamp) -> Markup {
    let execution = &snapshot.execution;
    html! {
        dl.facts {
            dt { "Task" } dd { a href={ "/ui/tasks/" (execution.task_id) } { (execution.task_name) } }
            dt { "Trigger" } dd {
                (execution.trigger_type)
                @if let Some(upstream) = execution.upstream_execution_id {
                    " by " a.mono href={ "/ui/executions/" (upstream) } { (upstream) }
                }
            }
            @if let Some(shard) = execution.shard {
                dt { "Shard" } dd { (shard.index) span.muted { " of " (shard.total) } }
            }
            dt { "Scheduled at" } dd { (time(execution.scheduled_at)) }
            dt { "Started" } dd { (time_or_dash(execution.started_at)) }
            dt { "Finished" } dd { (time_or_dash(execution.finished_at)) }
            dt { "Duration" } dd {
                @match elapsed(execution.started_at, execution.finished_at, now) {
                    Some(text) => { (text) @if execution.finished_at.is_none() { span.muted { " so far" } } },
                    None => span.muted { "—" },
                }
            }
            dt { "Attempt" }
            dd { (execution.attempt) span.muted { " · " (execution.retries) @if execution.retries == 1 { " retry" } @else { " retries" } } }
            dt { "Executor instance" } dd { (instance(&snapshot.instances, execution.executor_id)) }
            @if let Some(deadline) = execution.deadline_at { dt { "Deadline" } dd { (time(deadline)) } }
            @if let Some(retry_at) = execution.retry_at { dt { "Next retry" } dd { (time(retry_at)) } }
            @if execution.missed_slots > 0 {
                dt { "Missed slots" } dd { (execution.missed_slots) span.muted { " earlier fires folded into this one" } }
            }
            @if let Some(error) = &execution.error { dt { "Error" } dd.error-text { (error) } }
            @if !snapshot.downstream.is_empty() {
                dt { "Triggered" }
                dd { @for id in &snapshot.downstream { a.mono href={ "/ui/executions/" (id) } { (id) } " " } }
            }
        }
    }
}

fn timeline(snapshot: &Snapshot) -> Markup {
    if snapshot.attempts.is_empty() {
        return html! { p.muted { "No attempt yet: the execution waits to be sent to an executor instance." } };
    }
    html! {
        ol.timeline #attempts {
            @for attempt in &snapshot.attempts {
                li class={ "s-" (attempt.status) } {
                    div.spread.attempt-head {
                        strong { "Attempt " (attempt.attempt) }
                        (badge(attempt.status.as_str()))
                    }
                    div.small {
                        "on " (instance(&snapshot.instances, attempt.executor_id)) " · "
                        (time(attempt.started_at)) " → " (time_or_dash(attempt.finished_at))
                        @if let Some(finished) = attempt.finished_at {
                            " (" (duration(finished.millis_since(attempt.started_at))) ")"
                        }
                    }
                    @if let Some(error) = &attempt.error { div.small.error-text { (error) } }
                }
            }
        }
    }
}

/// The lines in order in a box that keeps its bottom (the newest lines) in view as it grows (see the stylesheet).
fn log_lines(lines: &[LogLine], href: &str, open: bool) -> Markup {
    if lines.is_empty() {
        return html! {
            p.muted #logs {
                @if open { "No log lines yet. Lines the handler writes with " code { "ctx.log" } " show here as they arrive." }
                @else { "The handler wrote no log lines." }
            }
        };
    }
    html! {
        div.log-scroll {
            pre.log #logs {
                @for line in lines {
                    span.at { (clock(line.at)) } " " (line.message) "\n"
                }
            }
        }
        @if lines.len() as u64 >= LOG_LINES {
            p.small.muted {
                "The first " (LOG_LINES) " lines; the API pages through all of them: "
                code { "/api/v1/executions/" (href.trim_start_matches("/ui/executions/")) "/logs" }
            }
        }
    }
}

/// A log line's time of day: UTC in the page (`15:22:14.250`), the browser's zone once the script runs.
fn clock(at: Timestamp) -> Markup {
    let rfc3339 = at.to_string();
    let text = format::clock_text(at);
    let millis = at.as_millis().rem_euclid(1000);
    html! { time datetime=(rfc3339) data-style="time" title="UTC" { (text) "." (format!("{millis:03}")) } }
}
