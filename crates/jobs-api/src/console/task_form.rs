//! The task form: create and edit, checked as the user types, with the cron expression's next fire times.
//!
//! The form's strings become a [`TaskBody`], the REST body, so the console creates and replaces tasks by the same
//! rules as `POST` and `PUT /api/v1/tasks`; each error goes next to the field its message names.

mod view;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use jobs_model::{BackoffKind, ErrorKind, RetryBackoff, TaskId, TaskSpec, Timestamp};

use crate::console::error::PageResult;
use crate::console::format::pretty_json;
use crate::console::layout;
use crate::console::session::Session;
use crate::console::task_detail::parse_parameters;
use crate::console::task_form::view::{Mode, error_line, page, preview_block};
use crate::dto::TaskBody;
use crate::handlers::cron::fire_times;
use crate::{ApiError, AppState};

/// The fields that show an error, in the order of the form.
const FIELDS: &[&str] = &[
    "name",
    "description",
    "executor",
    "cron_expression",
    "timezone",
    "misfire_policy",
    "max_catchup",
    "execution_mode",
    "load_balance_strategy",
    "timeout_seconds",
    "max_retry",
    "retry_backoff_type",
    "retry_delay_seconds",
    "retry_max_delay_seconds",
    "parameters",
    "on_success",
    "on_failure",
];

/// Fire times in the preview.
const PREVIEW_COUNT: usize = 5;

/// The form as typed: every value a string, so that a refused submit shows each one again unchanged.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TaskForm {
    /// Set on the edit form: the live name check does not count the task itself as a clash.
    task_id: String,
    name: String,
    description: String,
    cron_expression: String,
    timezone: String,
    execution_mode: String,
    load_balance_strategy: String,
    max_retry: String,
    /// `none`, `fixed` or `exponential`.
    retry_backoff_type: String,
    retry_delay_seconds: String,
    retry_max_delay_seconds: String,
    timeout_seconds: String,
    misfire_policy: String,
    /// Empty: no cap.
    max_catchup: String,
    executor: String,
    parameters: String,
    /// Task names, separated by commas.
    on_success: String,
    on_failure: String,
    /// Present when the checkbox is ticked.
    enabled: Option<String>,
}

impl TaskForm {
    fn from_spec(spec: &TaskSpec, id: Option<TaskId>) -> Self {
        let backoff = spec.retry_backoff;
        Self {
            task_id: id.map(|id| id.to_string()).unwrap_or_default(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            cron_expression: spec.cron_expression.clone().unwrap_or_default(),
            timezone: spec.timezone.clone(),
            execution_mode: spec.execution_mode.as_str().to_owned(),
            load_balance_strategy: spec.load_balance_strategy.clone(),
            max_retry: spec.max_retry.to_string(),
            retry_backoff_type: backoff.map_or("none", |backoff| backoff.kind.as_str()).to_owned(),
            retry_delay_seconds: backoff.map(|backoff| backoff.delay_seconds.to_string()).unwrap_or_default(),
            retry_max_delay_seconds: backoff
                .and_then(|backoff| backoff.max_delay_seconds)
                .map(|max| max.to_string())
                .unwrap_or_default(),
            timeout_seconds: spec.timeout_seconds.to_string(),
            misfire_policy: spec.misfire_policy.as_str().to_owned(),
            max_catchup: spec.max_catchup.map(|max| max.to_string()).unwrap_or_default(),
            executor: spec.executor.clone().unwrap_or_default(),
            parameters: pretty_json(&serde_json::Value::Object(spec.parameters.clone())),
            on_success: spec.on_success.join(", "),
            on_failure: spec.on_failure.join(", "),
            enabled: spec.enabled.then(|| "true".to_owned()),
        }
    }

    /// The REST body the form stands for; numbers and JSON that do not parse are field errors.
    fn body(&self, errors: &mut Errors) -> TaskBody {
        let given = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        TaskBody {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            cron_expression: Some(self.cron_expression.clone()),
            timezone: given(&self.timezone),
            execution_mode: given(&self.execution_mode),
            load_balance_strategy: given(&self.load_balance_strategy),
            max_retry: number(errors, "max_retry", &self.max_retry),
            retry_backoff: self.backoff(errors),
            timeout_seconds: number(errors, "timeout_seconds", &self.timeout_seconds),
            misfire_policy: given(&self.misfire_policy),
            max_catchup: Some(number(errors, "max_catchup", &self.max_catchup)),
            parameters: self.parameters(errors),
            executor: Some(self.executor.clone()),
            enabled: Some(self.enabled.is_some()),
            on_success: Some(task_names(&self.on_success)),
            on_failure: Some(task_names(&self.on_failure)),
        }
    }

    fn backoff(&self, errors: &mut Errors) -> Option<RetryBackoff> {
        let kind = match self.retry_backoff_type.as_str() {
            "" | "none" => return None,
            word => match word.parse::<BackoffKind>() {
                Ok(kind) => kind,
                Err(_) => {
                    let allowed = BackoffKind::ALL.join(", ");
                    errors.add(
                        "retry_backoff_type",
                        format!("invalid `retry_backoff_type`: `{word}` is not one of none, {allowed}"),
                    );
                    return None;
                }
            },
        };
        if self.retry_delay_seconds.trim().is_empty() {
            errors.add("retry_delay_seconds", "invalid `retry_delay_seconds`: is required with a retry backoff");
            return None;
        }
        let delay_seconds = number(errors, "retry_delay_seconds", &self.retry_delay_seconds)?;
        let max_delay_seconds = number(errors, "retry_max_delay_seconds", &self.retry_max_delay_seconds);
        Some(RetryBackoff { kind, delay_seconds, max_delay_seconds })
    }

    fn parameters(&self, errors: &mut Errors) -> Option<jobs_model::Parameters> {
        if self.parameters.trim().is_empty() {
            return None;
        }
        parse_parameters(&self.parameters).map_err(|message| errors.add("parameters", message)).ok()
    }

    /// The task the form describes, checked exactly as the API checks one, or every error found.
    fn spec(&self, state: &AppState) -> Result<TaskSpec, Errors> {
        let mut errors = Errors::default();
        match fires(&self.cron_expression, &self.timezone) {
            Fires::Invalid { field: "timezone", message } => {
                errors.add("timezone", message);
                // The expression is checked on its own too, so that both mistakes show at once.
                if let Fires::Invalid { field, message } = fires(&self.cron_expression, "UTC") {
                    errors.add(field, message);
                }
            }
            Fires::Invalid { field, message } => errors.add(field, message),
            Fires::Manual | Fires::Times { .. } => {}
        }
        let body = self.body(&mut errors);
        match body.into_spec() {
            Ok(spec) => match state.engine.validate_task(&spec) {
                Ok(_) if errors.is_empty() => return Ok(spec),
                Ok(_) => {}
                Err(error) => errors.engine(error),
            },
            Err(error) => errors.api(&error),
        }
        Err(errors)
    }
}

/// The names in a comma- or space-separated list.
fn task_names(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\t']).filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// `Some(n)` for a whole number, `None` when empty (the default) or not a number (a field error).
fn number(errors: &mut Errors, field: &'static str, text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            errors.add(field, format!("invalid `{field}`: `{text}` is not a whole number"));
            None
        }
    }
}

/// What is wrong with a submitted form: messages by field, and what belongs to no field.
#[derive(Debug, Default)]
struct Errors {
    fields: BTreeMap<&'static str, String>,
    notice: Option<String>,
    status: Option<StatusCode>,
}

impl Errors {
    /// Keeps the first message of each field.
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.fields.entry(field).or_insert_with(|| message.into());
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.notice.is_none()
    }

    fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// An engine error by what it is about: the cron parser's, the strategy registry's, a name clash, or a field
    /// check naming its field.
    fn from_engine(error: jobs_engine::Error) -> Self {
        let mut errors = Self::default();
        errors.engine(error);
        errors
    }

    fn engine(&mut self, error: jobs_engine::Error) {
        use jobs_engine::Error;
        let field = match &error {
            Error::Invalid(invalid) => known_field(invalid.field()),
            Error::Cron(jobs_cron::Error::UnknownTimeZone { .. }) => Some("timezone"),
            Error::Cron(_) => Some("cron_expression"),
            Error::Strategy(_) => Some("load_balance_strategy"),
            Error::ChainCycle(_) => {
                self.status = Some(StatusCode::CONFLICT);
                Some("on_success")
            }
            Error::Storage(_) if error.kind() == ErrorKind::Conflict => {
                self.status = Some(StatusCode::CONFLICT);
                Some("name")
            }
            _ => None,
        };
        match field {
            Some(field) => self.add(field, error.to_string()),
            None => self.api(&ApiError::from(error)),
        }
    }

    /// An API error: to the field its message names (`invalid `field`: …`), else to the notice.
    fn api(&mut self, error: &ApiError) {
        let named = error.message().strip_prefix("invalid `").and_then(|rest| rest.split('`').next());
        match named.and_then(known_field) {
            Some(field) => self.add(field, error.message()),
            None => {
                self.status = Some(error.status());
                self.notice = Some(error.message().to_owned());
            }
        }
    }
}

/// The form field a message's field name stands for.
fn known_field(name: &str) -> Option<&'static str> {
    let name = match name {
        "retry_backoff" | "retry_backoff.type" => "retry_backoff_type",
        "retry_backoff.delay_seconds" => "retry_delay_seconds",
        "retry_backoff.max_delay_seconds" => "retry_max_delay_seconds",
        "ExecutionMode" => "execution_mode",
        "MisfirePolicy" => "misfire_policy",
        // `on_success[2]`: the list's field.
        other => other.split('[').next().unwrap_or(other),
    };
    FIELDS.iter().copied().find(|field| *field == name)
}

/// A cron expression's next fire times, or why there are none.
#[derive(Debug)]
enum Fires {
    /// No expression: the task runs only when triggered.
    Manual,
    Times {
        timezone: String,
        times: Vec<String>,
    },
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Computed as `GET /api/v1/cron/preview` computes them.
fn fires(expression: &str, timezone: &str) -> Fires {
    let expression = expression.trim();
    if expression.is_empty() {
        return Fires::Manual;
    }
    let timezone = if timezone.is_empty() { "UTC" } else { timezone };
    match fire_times(expression, timezone, Timestamp::now(), PREVIEW_COUNT) {
        Ok(times) => Fires::Times { timezone: timezone.to_owned(), times },
        Err(error) => {
            let field = match error {
                jobs_cron::Error::UnknownTimeZone { .. } => "timezone",
                _ => "cron_expression",
            };
            Fires::Invalid { field, message: error.to_string() }
        }
    }
}

pub(crate) async fn new_form(State(state): State<AppState>, Extension(session): Extension<Session>) -> PageResult {
    let form = TaskForm::from_spec(&TaskSpec::named(""), None);
    Ok(page(&state, &session, &Mode::New, &form, &Errors::default(), StatusCode::OK).await)
}

pub(crate) async fn edit_form(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    let form = TaskForm::from_spec(&task.spec, Some(task.id));
    let mode = Mode::Edit { id: task.id, name: task.spec.name };
    Ok(page(&state, &session, &mode, &form, &Errors::default(), StatusCode::OK).await)
}

/// `POST /ui/tasks`: creates the task as `POST /api/v1/tasks` does.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<TaskForm>,
) -> PageResult {
    let outcome = match form.spec(&state) {
        Ok(spec) => state.engine.create_task(spec).await.map_err(Errors::from_engine),
        Err(errors) => Err(errors),
    };
    Ok(match outcome {
        Ok(task) => Redirect::to(&format!("/ui/tasks/{}?created=1", task.id)).into_response(),
        Err(errors) => page(&state, &session, &Mode::New, &form, &errors, errors.status()).await,
    })
}

/// `POST /ui/tasks/{task}`: replaces the task as `PUT /api/v1/tasks/{task}` does.
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Form(form): Form<TaskForm>,
) -> PageResult {
    let task = state.engine.find_task(&key).await?;
    let outcome = match form.spec(&state) {
        Ok(spec) => state.engine.replace_task(&task.id.to_string(), spec).await.map_err(Errors::from_engine),
        Err(errors) => Err(errors),
    };
    Ok(match outcome {
        Ok(task) => Redirect::to(&format!("/ui/tasks/{}?saved=1", task.id)).into_response(),
        Err(errors) => {
            let mode = Mode::Edit { id: task.id, name: task.spec.name };
            page(&state, &session, &mode, &form, &errors, errors.status()).await
        }
    })
}

/// `POST /ui/tasks/check`: each field's error (empty when fine) and the cron preview, as out-of-band fragments.
pub(crate) async fn check(State(state): State<AppState>, Form(form): Form<TaskForm>) -> Response {
    let mut errors = form.spec(&state).err().unwrap_or_default();
    if errors.get("name").is_none()
        && let Ok(existing) = state.engine.find_task(&form.name).await
        && existing.id.to_string() != form.task_id
    {
        errors.add("name", format!("task `{}` already exists", form.name));
    }
    let fires = fires(&form.cron_expression, &form.timezone);
    layout::respond(html! {
        @for field in FIELDS { (error_line(field, errors.get(field), true)) }
        (preview_block(&fires, true))
    })
}
