//! The task form's markup: the whole page, each field with its hint and error line, and the cron preview block.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use jobs_model::{BackoffKind, ExecutionMode, MisfirePolicy, TaskId};

use crate::AppState;
use crate::console::layout::{self, Nav, csrf_field};
use crate::console::session::Session;
use crate::console::task_form::{Errors, Fires, TaskForm, fires};

/// Offered in the time zone field; any IANA name is accepted.
const TIME_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "America/Buenos_Aires",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// Which form: a new task, or the task being edited.
#[derive(Debug)]
pub(super) enum Mode {
    New,
    Edit { id: TaskId, name: String },
}

/// A field's error paragraph, empty when the field is fine (and then hidden by the stylesheet).
pub(super) fn error_line(field: &str, message: Option<&str>, oob: bool) -> Markup {
    html! {
        p.error id={ "err-" (field) } aria-live="polite" hx-swap-oob=[oob.then_some("true")] { @if let Some(message) = message { (message) } }
    }
}

pub(super) fn preview_block(fires: &Fires, oob: bool) -> Markup {
    html! {
        div #cron-preview .cron-preview aria-live="polite" hx-swap-oob=[oob.then_some("true")] {
            @match fires {
                Fires::Manual => p.hint { "No schedule: the task runs only when triggered." },
                Fires::Invalid { .. } => p.hint { "The next fire times show once the schedule is valid." },
                Fires::Times { timezone, times } if times.is_empty() => p.hint { "This schedule never fires again (" (timezone) ")." },
                Fires::Times { timezone, times } => {
                    p.hint { "Next " (times.len()) " fires in " (timezone) ":" }
                    ol.preview { @for time in times { li.mono { (time.replacen('T', " ", 1)) } } }
                }
            }
        }
    }
}

/// The `aria-describedby` of a control: its hint, if any, and its error line.
fn described(field: &str, hint: bool) -> String {
    if hint { format!("hint-{field} err-{field}") } else { format!("err-{field}") }
}

/// A labelled control with its hint and error line.
fn field(name: &str, label: &str, hint: Option<Markup>, errors: &Errors, control: Markup) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            (control)
            @if let Some(hint) = hint { p.hint id={ "hint-" (name) } { (hint) } }
            (error_line(name, errors.get(name), false))
        }
    }
}

fn text(name: &str, value: &str, errors: &Errors, hint: bool, inputmode: Option<&str>, list: Option<&str>) -> Markup {
    html! {
        input id=(name) type="text" name=(name) value=(value) inputmode=[inputmode] list=[list] autocomplete="off"
            aria-invalid=[errors.get(name).map(|_| "true")] aria-describedby=(described(name, hint));
    }
}

fn select(name: &str, value: &str, options: &[&str], errors: &Errors) -> Markup {
    html! {
        select id=(name) name=(name) aria-invalid=[errors.get(name).map(|_| "true")] aria-describedby=(described(name, false)) {
            @for option in options { option value=(option) selected[*option == value] { (option) } }
            // A value the lists do not hold (sent by hand) stays visible, so its error makes sense.
            @if !value.is_empty() && !options.contains(&value) { option value=(value) selected { (value) } }
        }
    }
}

pub(super) async fn page(
    state: &AppState,
    session: &Session,
    mode: &Mode,
    form: &TaskForm,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let strategies = state.engine.strategies().names();
    let mut groups: Vec<String> = state
        .engine
        .executors(None, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|view| view.executor.name)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let fires = fires(&form.cron_expression, &form.timezone);
    let (title, action, cancel, submit) = match mode {
        Mode::New => ("New task".to_owned(), "/ui/tasks".to_owned(), "/ui/tasks".to_owned(), "Create task"),
        Mode::Edit { id, name } => {
            (format!("Edit {name}"), format!("/ui/tasks/{id}"), format!("/ui/tasks/{id}"), "Save changes")
        }
    };
    let backoffs: Vec<&str> = std::iter::once("none").chain(BackoffKind::ALL.iter().copied()).collect();
    let e = errors;
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/tasks" { "Tasks" }
            @if let Mode::Edit { id, name } = mode { " / " a href={ "/ui/tasks/" (id) } { (name) } }
        }
        h1 { (title) }
        @if let Some(notice) = &errors.notice { div.notice.bad role="alert" { (notice) } }
        @else if !errors.fields.is_empty() {
            div.notice.bad role="alert" { "The task was not saved: fix the field" @if errors.fields.len() != 1 { "s" } " marked below." }
        }
        form #task-form method="post" action=(action) hx-post="/ui/tasks/check"
            hx-trigger="input changed delay:400ms, change" hx-swap="none" {
            (csrf_field(session))
            input type="hidden" name="task_id" value=(form.task_id);
            fieldset.panel {
                legend { "Task" }
                div.fields {
                    (field("name", "Name", Some(html! { "Letters, digits and " code { "_ - . :" } ", starting with a letter or digit; unique." }), e,
                        text("name", &form.name, e, true, None, None)))
                    (field("executor", "Executor group", Some(html! { "Empty: any instance that declared the task." }), e,
                        text("executor", &form.executor, e, true, None, Some("executor-groups"))))
                }
                (field("description", "Description", None, e, text("description", &form.description, e, false, None, None)))
                div.field {
                    label.check for="enabled" {
                        input #enabled type="checkbox" name="enabled" value="true" checked[form.enabled.is_some()] aria-describedby="hint-enabled";
                        "Enabled"
                    }
                    p.hint #hint-enabled { "A paused task does not fire; it can still be triggered by hand." }
                }
            }
            fieldset.panel {
                legend { "Schedule" }
                div.fields {
                    div {
                        (field("cron_expression", "Cron expression",
                            Some(html! {
                                "Five or six fields (seconds first), a macro such as " code { "@daily" } ", "
                                code { "@every 90s" } " or " code { "@at 2026-12-24T18:00:00+01:00" } "; empty for manual only."
                            }), e,
                            text("cron_expression", &form.cron_expression, e, true, None, None)))
                    }
                    (field("timezone", "Time zone", Some(html! { "An IANA name; empty means UTC." }), e,
                        text("timezone", &form.timezone, e, true, None, Some("timezones"))))
                    (field("misfire_policy", "Misfire policy", None, e, select("misfire_policy", &form.misfire_policy, MisfirePolicy::ALL, e)))
                    (field("max_catchup", "Max catch-up",
                        Some(html! { "At most this many late slots fired after a gap, the newest; empty fires every slot within the grace." }), e,
                        text("max_catchup", &form.max_catchup, e, true, Some("numeric"), None)))
                }
                (preview_block(&fires, false))
            }
            fieldset.panel {
                legend { "Dispatch" }
                div.fields {
                    (field("execution_mode", "Execution mode", None, e, select("execution_mode", &form.execution_mode, ExecutionMode::ALL, e)))
                    (field("load_balance_strategy", "Load balance strategy", None, e,
                        select("load_balance_strategy", &form.load_balance_strategy, &strategies, e)))
                    (field("timeout_seconds", "Timeout (seconds)", Some(html! { "1 to 604800." }), e,
                        text("timeout_seconds", &form.timeout_seconds, e, true, Some("numeric"), None)))
                }
            }
            fieldset.panel {
                legend { "Retries" }
                div.fields {
                    (field("max_retry", "Max retries", Some(html! { "0 to 100." }), e,
                        text("max_retry", &form.max_retry, e, true, Some("numeric"), None)))
                    (field("retry_backoff_type", "Backoff", None, e, select("retry_backoff_type", &form.retry_backoff_type, &backoffs, e)))
                    (field("retry_delay_seconds", "Delay (seconds)", None, e,
                        text("retry_delay_seconds", &form.retry_delay_seconds, e, false, Some("numeric"), None)))
                    (field("retry_max_delay_seconds", "Max delay (seconds)", Some(html! { "Optional; caps an exponential backoff." }), e,
                        text("retry_max_delay_seconds", &form.retry_max_delay_seconds, e, true, Some("numeric"), None)))
                }
            }
            fieldset.panel {
                legend { "Parameters" }
                (field("parameters", "Parameters (JSON object)", Some(html! { "Sent to the executor with every execution." }), e, html! {
                    textarea #parameters name="parameters" rows="6" spellcheck="false"
                        aria-invalid=[e.get("parameters").map(|_| "true")] aria-describedby=(described("parameters", true)) { (form.parameters) }
                }))
            }
            fieldset.panel {
                legend { "Chains" }
                div.fields {
                    (field("on_success", "On success, trigger", Some(html! { "Task names, separated by commas. Each gets this run's result under " code { "parameters.upstream" } "." }), e,
                        text("on_success", &form.on_success, e, true, None, None)))
                    (field("on_failure", "On failure, trigger", Some(html! { "After the retries, on " code { "failed" } " or " code { "timeout" } "." }), e,
                        text("on_failure", &form.on_failure, e, true, None, None)))
                }
            }
            div.row {
                button type="submit" { (submit) }
                a.button.secondary href=(cancel) { "Cancel" }
            }
        }
        datalist #timezones { @for zone in TIME_ZONES { option value=(zone) {} } }
        datalist #executor-groups { @for group in &groups { option value=(group) {} } }
    };
    let mut response = layout::page(state, session, Nav::Tasks, &title, body).await;
    *response.status_mut() = status;
    response
}
