//! `GET /`: the last hour at a glance (executions finished, as a chart), the next fires due, recent failures, and
//! executors by health.

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use jobs_model::{Execution, ExecutionStatus, ExecutorState, Health, Timestamp};
use jobs_registry::ExecutorView;
use jobs_storage::ExecutionFilter;

use crate::AppState;
use crate::console::charts::{self, Bar};
use crate::console::error::PageResult;
use crate::console::format::{badge, clock_text, time, time_or_dash};
use crate::console::layout::{self, Nav};
use crate::console::session::Session;

/// The chart's span and its bars.
const HOUR_MILLIS: i64 = 3_600_000;
const BUCKET_MILLIS: i64 = 5 * 60_000;
const LIST_LENGTH: u64 = 8;
/// Cron fires shed this recently make the overview say that the cluster sheds load.
const SHEDDING_MILLIS: i64 = 5 * 60_000;
/// The newest missed executions looked at for it.
const SHED_LOOKED_AT: u64 = 200;

pub(crate) async fn page(State(state): State<AppState>, Extension(session): Extension<Session>) -> PageResult {
    let engine = &state.engine;
    let now = Timestamp::now();
    // Whole buckets, so that each bar keeps its span as the page is reloaded.
    let since = Timestamp::from_millis((now.as_millis() - HOUR_MILLIS) / BUCKET_MILLIS * BUCKET_MILLIS + BUCKET_MILLIS);
    let counts = engine.finished_counts(since, BUCKET_MILLIS).await?;
    let next = engine.next_fires(LIST_LENGTH).await?;
    let failures = recent_failures(&state).await?;
    let shed = recently_shed(&state, now).await?;
    let executors = engine.executors(None, None).await?;
    let any_task = !next.is_empty()
        || !engine.list_tasks(&jobs_storage::TaskFilter { limit: 1, ..Default::default() }).await?.is_empty();

    let buckets = (HOUR_MILLIS / BUCKET_MILLIS) as usize;
    let mut bars: Vec<Bar> = (0..buckets)
        .map(|index| {
            let start = Timestamp::from_millis(since.as_millis() + index as i64 * BUCKET_MILLIS);
            Bar { label: clock_label(start), segments: vec![(0, "success"), (0, "failed"), (0, "skipped")], href: None }
        })
        .collect();
    let (mut succeeded, mut failed, mut other) = (0, 0, 0);
    for count in &counts {
        let Some(bar) = usize::try_from(count.bucket).ok().and_then(|index| bars.get_mut(index)) else { continue };
        let (slot, total) = match count.status {
            ExecutionStatus::Success => (0, &mut succeeded),
            ExecutionStatus::Failed | ExecutionStatus::Timeout => (1, &mut failed),
            _ => (2, &mut other),
        };
        bar.segments[slot].0 += count.count;
        *total += count.count;
    }
    let summary =
        format!("executions finished in the last hour: {succeeded} succeeded, {failed} failed, {other} other");

    let body = html! {
        h1 { "Overview" }
        @if shed > 0 {
            div.notice.warn role="status" {
                strong { "The cluster is shedding load. " }
                (shed) @if shed >= SHED_LOOKED_AT { " or more" } " cron fires in the last 5 minutes could not be sent within "
                code { "scheduler.max_lateness" } " because every executor that runs them was at its "
                code { "max_concurrency" } ", and were recorded " (badge("missed")) " (overloaded). Add executors or "
                "capacity, or spread the schedules."
            }
        }
        div.grid {
            section.panel aria-labelledby="activity" {
                div.spread {
                    h2 #activity { "Last hour" }
                    span.small.muted { (succeeded) " succeeded · " (failed) " failed · " (other) " other" }
                }
                (charts::bars(&summary, &bars, 3, |value| value.to_string()))
                div.legend aria-hidden="true" {
                    span { span.swatch.s-success {} "success" }
                    span { span.swatch.s-failed {} "failed or timed out" }
                    span { span.swatch.s-skipped {} "skipped, missed or cancelled" }
                }
            }
            section.panel aria-labelledby="executors" {
                div.spread { h2 #executors { "Executors" } a href="/ui/executors" { "All executors" } }
                (executor_health(&executors))
            }
        }
        div.grid.section {
            section.panel aria-labelledby="next" {
                div.spread { h2 #next { "Next fires" } a href="/ui/tasks" { "All tasks" } }
                @if next.is_empty() {
                    div.empty {
                        @if any_task { p { "No enabled task has a schedule." } }
                        @else { p { "No tasks yet." } }
                        a.button href="/ui/tasks/new" { "Create a task" }
                    }
                } @else {
                    div.table-wrap { table {
                        thead { tr { th { "Task" } th { "Schedule" } th { "Next fire" } } }
                        tbody { @for task in &next { tr {
                            td { a href={ "/ui/tasks/" (task.id) } { (task.spec.name) } }
                            td.mono { (task.spec.cron_expression.as_deref().unwrap_or("")) }
                            td.nowrap { (time_or_dash(task.next_fire_at)) }
                        } } }
                    } }
                }
            }
            section.panel aria-labelledby="failures" {
                h2 #failures { "Recent failures" }
                @if failures.is_empty() {
                    p.empty { "No failures. Every execution that fails or times out shows here with its error." }
                } @else {
                    div.table-wrap { table {
                        thead { tr { th { "Task" } th { "Status" } th { "When" } th { "Error" } } }
                        tbody { @for execution in &failures { tr {
                            td { a href={ "/ui/executions/" (execution.id) } { (execution.task_name) } }
                            td { (badge(execution.status.as_str())) }
                            td.nowrap { (time(execution.finished_at.unwrap_or(execution.scheduled_at))) }
                            td.small { (execution.error.as_deref().unwrap_or("")) }
                        } } }
                    } }
                }
            }
        }
    };
    Ok(layout::page(&state, &session, Nav::Overview, "Overview", body).await)
}

/// How many of the newest missed executions were shed as overloaded within the last [`SHEDDING_MILLIS`].
async fn recently_shed(state: &AppState, now: Timestamp) -> PageResult<u64> {
    let filter = ExecutionFilter { status: Some(ExecutionStatus::Missed), limit: SHED_LOOKED_AT, ..Default::default() };
    let missed = state.engine.list_executions(&filter).await?;
    let since = now.add_millis(-SHEDDING_MILLIS);
    let shed = missed
        .iter()
        .filter(|execution| execution.finished_at.is_some_and(|at| at >= since))
        .filter(|execution| execution.error.as_deref().is_some_and(|error| error.starts_with("overloaded")))
        .count();
    Ok(u64::try_from(shed).unwrap_or(u64::MAX))
}

/// The newest failed and timed-out executions together.
async fn recent_failures(state: &AppState) -> PageResult<Vec<Execution>> {
    let mut failures = Vec::new();
    for status in [ExecutionStatus::Failed, ExecutionStatus::Timeout] {
        let filter = ExecutionFilter { status: Some(status), limit: LIST_LENGTH, ..Default::default() };
        failures.extend(state.engine.list_executions(&filter).await?);
    }
    failures.sort_by_key(|execution| std::cmp::Reverse(execution.finished_at.unwrap_or(execution.scheduled_at)));
    failures.truncate(LIST_LENGTH as usize);
    Ok(failures)
}

fn executor_health(executors: &[ExecutorView]) -> Markup {
    if executors.is_empty() {
        return html! {
            div.empty {
                p { "No executor has registered yet. Start the example executor next to the scheduler:" }
                pre { "cargo run -p example-executor" }
                p.small { "Any service built on the SDK registers itself the same way." }
            }
        };
    }
    let healthy = |view: &&ExecutorView| view.state == ExecutorState::Active && view.executor.health == Health::Healthy;
    let unhealthy =
        |view: &&ExecutorView| view.state == ExecutorState::Active && view.executor.health == Health::Unhealthy;
    let states = [
        ("healthy", executors.iter().filter(healthy).count()),
        ("unhealthy", executors.iter().filter(unhealthy).count()),
        ("maintenance", executors.iter().filter(|view| view.state == ExecutorState::Maintenance).count()),
        ("offline", executors.iter().filter(|view| view.state == ExecutorState::Offline).count()),
    ];
    let mut groups: Vec<&str> = executors.iter().map(|view| view.executor.name.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    html! {
        div.row {
            @for (word, count) in states {
                div.panel { div.stat { (count) } (badge(word)) }
            }
        }
        p.small.muted {
            (executors.len()) " instance" @if executors.len() != 1 { "s" }
            " in " (groups.len()) " group" @if groups.len() != 1 { "s" } ": " (groups.join(", "))
        }
    }
}

/// `HH:MM UTC` of an instant (the bars' axis; their tooltips say the same).
fn clock_label(at: Timestamp) -> String {
    let clock = clock_text(at);
    format!("{} UTC", clock.get(..5).unwrap_or(&clock))
}
