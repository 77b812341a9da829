//! `/ui/executors`: groups and their instances with health, maintenance on and off, and deregistration.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use jobs_model::{ExecutorId, ExecutorState, ExecutorStatus, Health, Timestamp};
use jobs_registry::ExecutorView;

use crate::AppState;
use crate::console::error::PageResult;
use crate::console::format::{badge, duration, time, time_or_dash};
use crate::console::layout::{self, Nav, csrf_field};
use crate::console::session::Session;
use crate::handlers::parse_id;

/// Who the console records as having changed an instance's status (the REST API's free-text `by`).
const CHANGED_BY: &str = "console";

/// The filters offered above the list, by the word `?state=` takes.
const FILTERS: [&str; 4] = ["active", "maintenance", "offline", "unhealthy"];

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    /// What was just done (`maintenance`, `active`, `deregistered`), to `instance`: the text is made here, so a link
    /// cannot put words of its own in the notice.
    notice: Option<String>,
    instance: Option<String>,
}

/// The notice for a change just made, or `None` for an unknown code.
fn notice_text(code: &str, instance: &str) -> Option<String> {
    // Instance ids are short words (host names, ports); anything else is not shown.
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    let instance = if !instance.is_empty() && instance.len() <= 128 && instance.chars().all(plain) {
        instance
    } else {
        "the instance"
    };
    Some(match code {
        "maintenance" => format!("{instance} is in maintenance: it takes no new work, running work finishes"),
        "active" => format!("{instance} is active again and takes new work"),
        "deregistered" => format!("{instance} is deregistered; any work it was running failed as lost"),
        _ => return None,
    })
}

/// Whether `view` passes the filter `word` (one of [`FILTERS`]).
fn matches(view: &ExecutorView, word: &str) -> bool {
    match word {
        "unhealthy" => is_unhealthy(view),
        _ => view.state.as_str() == word,
    }
}

/// Needs an operator's eye: not in maintenance, and failing its health checks or silent (offline). The header's
/// count and the `unhealthy` filter are this.
pub(crate) fn is_unhealthy(view: &ExecutorView) -> bool {
    view.state == ExecutorState::Offline
        || (view.state == ExecutorState::Active && view.executor.health == Health::Unhealthy)
}

/// Takes work: active, with a recent heartbeat, and passing its health checks.
fn is_healthy(view: &ExecutorView) -> bool {
    view.state == ExecutorState::Active && view.executor.health == Health::Healthy
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let executors = state.engine.executors(None, None).await?;
    // An unknown word shows every instance, as the "All" link does.
    let filter = query.state.as_deref().and_then(|word| FILTERS.into_iter().find(|known| *known == word));
    let mut groups: BTreeMap<&str, Vec<&ExecutorView>> = BTreeMap::new();
    for view in &executors {
        groups.entry(view.executor.name.as_str()).or_default().push(view);
    }
    for views in groups.values_mut() {
        views.sort_by(|a, b| a.executor.instance_id.cmp(&b.executor.instance_id));
    }
    let now = Timestamp::now();
    let shown = executors.iter().filter(|view| filter.is_none_or(|word| matches(view, word))).count();

    let body = html! {
        div.spread {
            h1 { "Executors" }
            span.small.muted {
                (executors.len()) " instance" @if executors.len() != 1 { "s" }
                " in " (groups.len()) " group" @if groups.len() != 1 { "s" }
            }
        }
        @if let Some(notice) = query.notice.as_deref().and_then(|code| notice_text(code, query.instance.as_deref().unwrap_or(""))) {
            div.notice.ok role="status" { (notice) }
        }
        @if executors.is_empty() {
            (empty_state())
        } @else {
            nav.row.executor-filters aria-label="Filter by state" {
                a href="/ui/executors" aria-current=[filter.is_none().then_some("page")] { "All (" (executors.len()) ")" }
                @for word in FILTERS {
                    @let count = executors.iter().filter(|view| matches(view, word)).count();
                    a href={ "/ui/executors?state=" (word) } aria-current=[(filter == Some(word)).then_some("page")] {
                        (word) " (" (count) ")"
                    }
                }
            }
            @if shown == 0 {
                div.panel { p.empty { "No instance is " (filter.unwrap_or_default()) " now. " a href="/ui/executors" { "Show all instances" } } }
            }
            @for (name, views) in &groups {
                @let rows: Vec<&&ExecutorView> = views.iter().filter(|view| filter.is_none_or(|word| matches(view, word))).collect();
                @if !rows.is_empty() {
                    (group_panel(&session, name, views, &rows, now))
                }
            }
        }
    };
    Ok(layout::page(&state, &session, Nav::Executors, "Executors", body).await)
}

fn empty_state() -> Markup {
    html! {
        div.panel { div.empty {
            p { "No executor has registered with this scheduler yet." }
            p {
                "Start the example executor: it listens on port 9090, registers with the scheduler named by "
                code { "JOBS_SCHEDULER_URL" } " (" code { "http://127.0.0.1:8080" } " by default) and declares the demo tasks."
            }
            pre { "cargo run -p example-executor" }
            p.small { "Any service built on the executor SDK registers itself the same way when it starts, and shows here." }
        } }
    }
}

/// One executor group: its name and counts over all its instances, and a row per instance that passes the filter.
fn group_panel(
    session: &Session,
    name: &str,
    all: &[&ExecutorView],
    rows: &[&&ExecutorView],
    now: Timestamp,
) -> Markup {
    let healthy = all.iter().filter(|view| is_healthy(view)).count();
    html! {
        section.panel.section aria-labelledby={ "group-title-" (name) } {
            div.spread {
                h2 id={ "group-title-" (name) } { (name) }
                span.small.muted { (all.len()) " instance" @if all.len() != 1 { "s" } " · " (healthy) " healthy" }
            }
            div.table-wrap { table.stack id={ "group-" (name) } {
                thead { tr {
                    th { "Instance" } th.hide-phone { "Base URL" } th { "State" } th { "Health" }
                    th.hide-phone { "Failures" } th { "Last heartbeat" } th { "Running" } th { "Tasks" }
                    th { span.sr-only { "Actions" } }
                } }
                tbody { @for view in rows { (instance_row(session, view, now)) } }
            } }
        }
    }
}

fn instance_row(session: &Session, view: &ExecutorView, now: Timestamp) -> Markup {
    let executor = &view.executor;
    let id = executor.id.to_string();
    html! {
        tr id={ "executor-" (id) } {
            td data-label="Instance" { strong.mono title={ "executor id " (id) } { (executor.instance_id) } }
            td.hide-phone.small data-label="Base URL" {
                span.mono { (executor.base_url) }
                div.muted { "weight " (executor.weight) " · early delivery " (executor.early_delivery_ms) " ms" }
            }
            td data-label="State" {
                (badge(view.state.as_str()))
                @if executor.status == ExecutorStatus::Maintenance {
                    div.small.maintenance-note {
                        @if let Some(reason) = executor.status_reason.as_deref().filter(|reason| !reason.is_empty()) {
                            span.reason { "“" (reason) "”" } br;
                        }
                        span.muted {
                            @if let Some(by) = &executor.status_changed_by { "by " (by) " " }
                            @if let Some(at) = executor.status_changed_at { "since " (time(at)) }
                        }
                    }
                }
            }
            td data-label="Health" { (badge(executor.health.as_str())) }
            td data-label="Failures" { (executor.consecutive_failures) }
            td.nowrap data-label="Heartbeat" {
                (time_or_dash(executor.last_heartbeat_at))
                @if let Some(at) = executor.last_heartbeat_at {
                    div.small.muted { (duration(now.millis_since(at))) " ago" }
                }
            }
            td data-label="Running" { (view.running) }
            td.small data-label="Tasks" {
                @if executor.tasks.is_empty() { span.muted { "none" } }
                @for (index, task) in executor.tasks.iter().enumerate() {
                    @if index > 0 { ", " }
                    a href={ "/ui/tasks?name=" (task) } { (task) }
                }
            }
            td { (actions(session, executor.status, &id)) }
        }
    }
}

/// Maintenance (with an optional reason) or back to active, and the way to deregistration.
fn actions(session: &Session, status: ExecutorStatus, id: &str) -> Markup {
    let action = format!("/ui/executors/{id}/status");
    html! {
        div.executor-actions {
            form.maintenance method="post" action=(action) {
                (csrf_field(session))
                @match status {
                    ExecutorStatus::Active => {
                        input type="hidden" name="status" value="maintenance";
                        label.small for={ "reason-" (id) } { "Reason (optional)" }
                        input id={ "reason-" (id) } type="text" name="reason" maxlength="1024" placeholder="e.g. kernel upgrade";
                        button.secondary type="submit" { "Maintenance" }
                    }
                    ExecutorStatus::Maintenance => {
                        input type="hidden" name="status" value="active";
                        button type="submit" { "Back to active" }
                    }
                }
            }
            a.danger-link href={ "/ui/executors/" (id) "/deregister" } { "Deregister" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/executors/{executor}/status`: as `PUT /api/v1/executors/{id}/status`, recorded as made by the console.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> PageResult {
    let id = parse_id("executor", &id, ExecutorId::parse)?;
    let status = crate::dto::word::<ExecutorStatus>("status", form.status.trim(), ExecutorStatus::ALL)?;
    let reason = Some(form.reason.trim()).filter(|reason| !reason.is_empty());
    let view = state.engine.set_executor_status(id, status, reason, Some(CHANGED_BY)).await?;
    Ok(to_list(status.as_str(), &view.executor.instance_id))
}

/// `GET /ui/executors/{executor}/deregister`: what deregistering does, and the button that does it.
pub(crate) async fn confirm_deregister(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("executor", &id, ExecutorId::parse)?;
    let view = state.engine.executor(id).await?;
    let executor = &view.executor;
    let title = format!("Deregister {}", executor.instance_id);
    let body = html! {
        div.panel.confirm {
            h1 { "Deregister " span.mono { (executor.instance_id) } "?" }
            dl.facts {
                dt { "Instance" } dd.mono { (executor.instance_id) }
                dt { "Group" } dd { (executor.name) }
                dt { "Base URL" } dd.mono { (executor.base_url) }
                dt { "State" } dd { (badge(view.state.as_str())) " " (badge(executor.health.as_str())) }
                dt { "Running" } dd { (view.running) }
                dt { "Declared tasks" } dd { @if executor.tasks.is_empty() { "none" } @else { (executor.tasks.join(", ")) } }
            }
            h2 { "What this does" }
            ul {
                li { "The instance and its list of declared tasks are removed from the registry: it gets no new work. The tasks themselves stay; a task no other instance declares fails its fires until one registers." }
                @if view.running > 0 {
                    li { strong { "Its " (view.running) " running execution" @if view.running != 1 { "s" } " fail as lost" } " (\"the executor instance was deregistered\"), and are retried on another instance if their task has retries left." }
                } @else {
                    li { "Work running on it would fail as lost and be retried elsewhere if its task has retries left; the scheduler counts none running on it now." }
                }
                li { "An SDK executor whose process still runs has its next heartbeat refused and registers again at once, under a new id and active (even if it was in maintenance). To remove it for good, stop the process; to only keep work away from it, use maintenance instead." }
            }
            form method="post" action={ "/ui/executors/" (id) "/deregister" } {
                (csrf_field(&session))
                div.row {
                    button.danger type="submit" { "Deregister" }
                    a.button.secondary href="/ui/executors" { "Cancel" }
                }
            }
        }
    };
    Ok(layout::page(&state, &session, Nav::Executors, &title, body).await)
}

/// `POST /ui/executors/{executor}/deregister`: as `DELETE /api/v1/executors/{id}`.
pub(crate) async fn deregister(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let id = parse_id("executor", &id, ExecutorId::parse)?;
    let view = state.engine.executor(id).await?;
    state.engine.deregister_executor(id).await?;
    Ok(to_list("deregistered", &view.executor.instance_id))
}

/// A 303 back to the list, with the notice for `code` on top.
fn to_list(code: &str, instance: &str) -> axum::response::Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", code)
        .append_pair("instance", instance)
        .finish();
    Redirect::to(&format!("/ui/executors?{query}")).into_response()
}
