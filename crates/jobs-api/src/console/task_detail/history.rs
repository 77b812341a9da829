//! A task's executions on its page: the filters (status, trigger, a span of time), one page of the table with a
//! cursor to older ones, and the durations of the latest finished runs as a chart.

use std::collections::HashMap;

use maud::{Markup, html};
use serde::Deserialize;

use jobs_model::{Execution, ExecutionId, ExecutionStatus, ExecutorId, Task, Timestamp, TriggerType};
use jobs_storage::ExecutionFilter;

use crate::AppState;
use crate::console::charts::{self, Bar};
use crate::console::error::PageResult;
use crate::console::executions::{instance, instance_names};
use crate::console::format::{self, badge, duration, elapsed, time, time_or_dash};

/// Executions per page of the table.
const PAGE: u64 = 25;
/// Runs in the duration chart, and how far back to look for them.
const CHART_RUNS: usize = 30;
const CHART_LOOKBACK: u64 = 120;

/// The filters and the cursor, as typed: all text, so that nothing a user types is refused before it is read.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    status: Option<String>,
    trigger_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// The filters read, with a message for each field that could not be.
#[derive(Debug, Default)]
struct Filters {
    status: Option<ExecutionStatus>,
    trigger_type: Option<TriggerType>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    before: Option<ExecutionId>,
    errors: HashMap<&'static str, String>,
}

/// A field's text, trimmed; blank is not given.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|text| !text.is_empty())
}

impl Filters {
    fn read(query: &HistoryQuery) -> Self {
        let mut filters = Self::default();
        if let Some(text) = given(&query.status) {
            match text.parse() {
                Ok(status) => filters.status = Some(status),
                Err(_) => filters.error("status", format!("`{text}` is not a status")),
            }
        }
        if let Some(text) = given(&query.trigger_type) {
            match text.parse() {
                Ok(kind) => filters.trigger_type = Some(kind),
                Err(_) => filters.error("trigger_type", format!("`{text}` is not a trigger type")),
            }
        }
        for (field, slot) in [("from", &mut filters.from), ("to", &mut filters.to)] {
            let Some(text) = given(if field == "from" { &query.from } else { &query.to }) else { continue };
            match parse_instant(text) {
                Some(at) => *slot = Some(at),
                None => {
                    let message = format!("`{text}` is not a time: write 2026-03-01 14:00 (UTC) or RFC 3339");
                    filters.errors.insert(field, message);
                }
            }
        }
        if let (Some(from), Some(to)) = (filters.from, filters.to)
            && to < from
        {
            filters.error("to", "`to` is before `from`".to_owned());
        }
        // The cursor is ours (the "Older" link): one that does not read starts from the newest.
        filters.before = given(&query.cursor).and_then(ExecutionId::parse);
        filters
    }

    fn error(&mut self, field: &'static str, message: String) {
        self.errors.insert(field, message);
    }

    fn storage(&self, task: &Task) -> ExecutionFilter {
        ExecutionFilter {
            task_id: Some(task.id),
            status: self.status,
            trigger_type: self.trigger_type,
            executor_id: None,
            from: self.from,
            to: if self.errors.contains_key("to") { None } else { self.to },
            before: self.before,
            limit: PAGE + 1,
        }
    }

    fn any(&self) -> bool {
        self.status.is_some() || self.trigger_type.is_some() || self.from.is_some() || self.to.is_some()
    }
}

/// An instant as RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` (a space or a `T` between) or `YYYY-MM-DD`, read as UTC.
pub(crate) fn parse_instant(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(at) = Timestamp::parse_rfc3339(text) {
        return Some(at);
    }
    let text = text.replacen(' ', "T", 1);
    match text.len() {
        10 => Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")),
        16 => Timestamp::parse_rfc3339(&format!("{text}:00Z")),
        19 => Timestamp::parse_rfc3339(&format!("{text}Z")),
        _ => None,
    }
}

/// The parts of a task's page about its executions.
#[derive(Debug)]
pub(crate) struct Section {
    /// The chart of the latest finished runs.
    pub(crate) durations: Markup,
    /// The filters, the table and its pager.
    pub(crate) executions: Markup,
    /// False when a filter did not read: the page answers 400.
    pub(crate) valid: bool,
}

/// The executions of a task as its page shows them.
pub(crate) async fn section(
    state: &AppState,
    task: &Task,
    query: &HistoryQuery,
    now: Timestamp,
) -> PageResult<Section> {
    let filters = Filters::read(query);
    let mut page = state.engine.list_executions(&filters.storage(task)).await?;
    let more = page.len() as u64 > PAGE;
    page.truncate(PAGE as usize);
    let recent = state
        .engine
        .list_executions(&ExecutionFilter { task_id: Some(task.id), limit: CHART_LOOKBACK, ..Default::default() })
        .await?;
    let instances = instance_names(state).await?;
    let base = format!("/ui/tasks/{}", task.id);
    let never_ran = recent.is_empty();
    let durations = html! {
        section.panel aria-labelledby="durations" {
            h2 #durations { "Durations" }
            (chart(&recent))
        }
    };
    let executions = html! {
        section.panel aria-labelledby="executions-heading" {
            h2 #executions-heading { "Executions" }
            @if never_ran {
                (empty(task, &base))
            } @else {
                (form(query, &filters, &base))
                @if page.is_empty() {
                    p.empty { "No executions match these filters. " a href=(base) { "Clear the filters" } }
                } @else {
                    (table(&page, &instances, now))
                }
                nav.pager aria-label="Pages of executions" {
                    @if filters.before.is_some() { a.button.secondary href=(link(&base, query, None)) { "Newest" } }
                    @if let (true, Some(last)) = (more, page.last()) {
                        a.button.secondary href=(link(&base, query, Some(last.id))) { "Older" }
                    }
                }
            }
        }
    };
    Ok(Section { durations, executions, valid: filters.errors.is_empty() })
}

fn empty(task: &Task, base: &str) -> Markup {
    html! {
        div.empty {
            p { "No executions yet." }
            @match (task.spec.enabled, task.next_fire_at) {
                (true, Some(next)) => p { "The next fire is at " (time(next)) "." },
                (false, _) => p { "The task is paused, so it does not fire on its schedule." },
                (true, None) => p { "The task has no schedule: it runs when triggered." },
            }
            a.button href={ (base) "/trigger" } { "Trigger it now" }
        }
    }
}

/// This page's link with the filters kept and `cursor` set (or left out: the newest page).
fn link(base: &str, query: &HistoryQuery, cursor: Option<ExecutionId>) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    let fields =
        [("status", &query.status), ("trigger_type", &query.trigger_type), ("from", &query.from), ("to", &query.to)];
    for (name, value) in fields {
        if let Some(value) = value.as_deref().filter(|value| !value.trim().is_empty()) {
            pairs.append_pair(name, value);
        }
    }
    if let Some(cursor) = cursor {
        pairs.append_pair("cursor", &cursor.to_string());
    }
    let pairs = pairs.finish();
    if pairs.is_empty() { base.to_owned() } else { format!("{base}?{pairs}#executions-heading") }
}

fn form(query: &HistoryQuery, filters: &Filters, base: &str) -> Markup {
    let error = |field: &str| filters.errors.get(field).map(String::as_str);
    let select = |name: &'static str, label: &str, words: &[&'static str], value: &Option<String>| {
        let value = value.as_deref().unwrap_or("");
        html! {
            div.field {
                label for={ "f-" (name) } { (label) }
                select id={ "f-" (name) } name=(name) aria-invalid=[error(name).map(|_| "true")]
                    aria-describedby={ "err-" (name) } {
                    option value="" selected[value.is_empty()] { "any" }
                    @for word in words { option value=(word) selected[value == *word] { (word) } }
                }
                p.error id={ "err-" (name) } role="alert" { (error(name).unwrap_or("")) }
            }
        }
    };
    let text = |name: &'static str, label: &str, value: &Option<String>| {
        html! {
            div.field {
                label for={ "f-" (name) } { (label) " (UTC)" }
                input id={ "f-" (name) } type="text" name=(name) value=(value.as_deref().unwrap_or(""))
                    placeholder="2026-03-01 14:00" autocomplete="off" aria-invalid=[error(name).map(|_| "true")]
                    aria-describedby={ "err-" (name) " time-hint" };
                p.error id={ "err-" (name) } role="alert" { (error(name).unwrap_or("")) }
            }
        }
    };
    html! {
        form.filters method="get" action=(base) aria-label="Filter executions" {
            (select("status", "Status", ExecutionStatus::ALL, &query.status))
            (select("trigger_type", "Trigger", TriggerType::ALL, &query.trigger_type))
            (text("from", "Scheduled from", &query.from))
            (text("to", "Scheduled to", &query.to))
            div.row {
                button type="submit" { "Filter" }
                @if filters.any() || !filters.errors.is_empty() { a.button.secondary href=(base) { "Clear" } }
            }
        }
        p.small.muted #time-hint {
            "Times are read as UTC: " code { "2026-03-01 14:00" } ", " code { "2026-03-01T14:00" } " or RFC 3339 with "
            "an offset (" code { "2026-03-01T15:00:00+01:00" } ")."
        }
    }
}

fn table(page: &[Execution], instances: &HashMap<ExecutorId, String>, now: Timestamp) -> Markup {
    html! {
        div.table-wrap {
            table #executions {
                thead { tr {
                    th { "Execution" } th.hide-phone { "Trigger" } th { "Status" } th { "Scheduled at" }
                    th.hide-phone { "Started" } th { "Duration" } th.hide-phone.num { "Attempt" }
                    th.hide-phone { "Executor instance" }
                } }
                tbody {
                    @for fire in fires(page) {
                        @let execution = fire[0];
                        tr {
                            td.mono {
                                a href={ "/ui/executions/" (execution.id) } title=(execution.id) { (short_id(execution.id)) }
                                @if execution.shard.is_some() { (shards(&fire, instances, now)) }
                            }
                            td.hide-phone { (execution.trigger_type) }
                            td { (badge(fire_status(&fire).as_str())) }
                            td.nowrap { (time(execution.scheduled_at)) }
                            td.nowrap.hide-phone { (time_or_dash(execution.started_at)) }
                            td.nowrap { (elapsed(execution.started_at, execution.finished_at, now).unwrap_or_default()) }
                            td.num.hide-phone { (execution.attempt) }
                            td.hide-phone {
                                @if fire.len() > 1 { span.muted { "every instance" } } @else { (instance(instances, execution.executor_id)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page's executions by fire, in the page's order: a broadcast fire's shards together (its first shard leading),
/// any other execution alone.
fn fires(page: &[Execution]) -> Vec<Vec<&Execution>> {
    let mut fires: Vec<Vec<&Execution>> = Vec::new();
    let mut at: HashMap<ExecutionId, usize> = HashMap::new();
    for execution in page {
        match execution.fire_id.and_then(|fire| at.get(&fire).copied()) {
            Some(index) => fires[index].push(execution),
            None => {
                if let Some(fire) = execution.fire_id {
                    at.insert(fire, fires.len());
                }
                fires.push(vec![execution]);
            }
        }
    }
    for fire in &mut fires {
        fire.sort_by_key(|execution| execution.shard.map(|shard| shard.index));
    }
    fires
}

/// A fire's outcome: open while a shard is, failed (or timed out) if one did, successful when every shard was.
fn fire_status(fire: &[&Execution]) -> ExecutionStatus {
    use ExecutionStatus::{Failed, Pending, Running, Success, Timeout};
    let any = |status: ExecutionStatus| fire.iter().any(|execution| execution.status == status);
    [Running, Pending, Failed, Timeout].into_iter().find(|status| any(*status)).unwrap_or_else(|| {
        if fire.iter().all(|execution| execution.status == Success) { Success } else { fire[0].status }
    })
}

/// A broadcast fire's shards, folded: each with its instance, status and duration.
fn shards(fire: &[&Execution], instances: &HashMap<ExecutorId, String>, now: Timestamp) -> Markup {
    let total = fire[0].shard.map_or(0, |shard| shard.total);
    html! {
        details.shards {
            summary { (fire.len()) " of " (total) " shards" }
            ul {
                @for execution in fire {
                    li {
                        a href={ "/ui/executions/" (execution.id) } title=(execution.id) {
                            "shard " (execution.shard.map_or(0, |shard| shard.index))
                        }
                        " " (instance(instances, execution.executor_id)) " " (badge(execution.status.as_str()))
                        " " (elapsed(execution.started_at, execution.finished_at, now).unwrap_or_default())
                    }
                }
            }
        }
    }
}

/// The last 8 hex digits of an id: UUIDv7s of the same minute share their first ones (a timestamp), not their last.
fn short_id(id: ExecutionId) -> String {
    let text = id.to_string();
    text.get(text.len().saturating_sub(8)..).unwrap_or(&text).to_owned()
}

/// One bar per finished run, oldest on the left, in its status's colour, linking to the run.
fn chart(recent: &[Execution]) -> Markup {
    let mut runs: Vec<(&Execution, u64)> = recent
        .iter()
        .filter_map(|execution| {
            let millis = execution.finished_at?.millis_since(execution.started_at?);
            Some((execution, u64::try_from(millis).unwrap_or(0)))
        })
        .take(CHART_RUNS)
        .collect();
    if runs.is_empty() {
        return html! { p.muted { "The durations of the latest " (CHART_RUNS) " finished runs show here once runs finish." } };
    }
    runs.reverse();
    let bars: Vec<Bar> = runs
        .iter()
        .map(|(execution, millis)| Bar {
            label: format!("{} UTC", format::clock_text(execution.scheduled_at)),
            segments: vec![(*millis, execution.status.as_str())],
            href: Some(format!("/ui/executions/{}", execution.id)),
        })
        .collect();
    let longest = runs.iter().map(|(_, millis)| *millis).max().unwrap_or(0);
    let mut sorted: Vec<u64> = runs.iter().map(|(_, millis)| *millis).collect();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let summary = format!(
        "durations of the latest {} finished runs: median {}, longest {}",
        runs.len(),
        duration(median as i64),
        duration(longest as i64)
    );
    html! {
        p.small.muted { (summary) "." }
        (charts::bars(&summary, &bars, 0, |value| duration(value as i64)))
        div.legend aria-hidden="true" {
            span { span.swatch.s-success {} "success" }
            span { span.swatch.s-failed {} "failed or timed out" }
            span { span.swatch.s-skipped {} "cancelled" }
        }
    }
}

#[cfg(test)]
mod tests;
