//! The OpenAPI 3 document of the API, generated from the handlers' annotations, and its reference page.
//!
//! Served at `GET /api/v1/openapi.json` and, as HTML, at `GET /api/v1/docs`.

mod page;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use axum::response::Html;
use serde_json::Value;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use jobs_model::protocol::{CancelRequest, DispatchRequest};

use crate::error::ErrorBody;
use crate::handlers::{cron, executions, executors, health, metrics, scheduler, tasks};

/// The whole document; this module's tests check that it names every route of [`crate::router`] and no other.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jobs",
        version = env!("CARGO_PKG_VERSION"),
        description = "A distributed cron scheduler: tasks, executors, executions, the cluster and cron previews.\n\n\
            Errors are `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` with a 4xx for bad input.\n\
            Lists take `limit` (at most 500) and a cursor.",
    ),
    paths(
        tasks::create, tasks::list, tasks::get, tasks::replace, tasks::patch, tasks::delete,
        tasks::pause, tasks::resume, tasks::trigger,
        executors::list, executors::register, executors::get, executors::delete, executors::set_status,
        executors::heartbeat,
        executions::list, executions::get, executions::callback, executions::cancel, executions::logs,
        executions::append_logs,
        scheduler::status,
        cron::preview,
        health::health,
        health::ready,
        metrics::metrics,
        document, docs,
    ),
    // The scheduler's requests to executors (`POST {base_url}/execute` and `/cancel`), for executors in other languages.
    components(schemas(ErrorBody, DispatchRequest, CancelRequest)),
    modifiers(&Conventions),
    tags(
        (name = "tasks", description = "What runs, when and where"),
        (name = "executors", description = "Executor instances: registration, heartbeats and maintenance"),
        (name = "executions", description = "Runs of tasks, their attempts, callbacks and logs"),
        (name = "scheduler", description = "The scheduler cluster"),
        (name = "cron", description = "Cron expressions"),
        (name = "health", description = "Liveness and readiness"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "openapi", description = "This document"),
    ),
)]
pub(crate) struct ApiDoc;

static DOCUMENT: LazyLock<Value> = LazyLock::new(document_json);
static PAGE: LazyLock<String> = LazyLock::new(|| page::render(&DOCUMENT));

/// The document as served.
///
/// utoipa 5 writes a link's fields as `operation_id`, `operation_ref` and `request_body`; they are renamed to
/// OpenAPI's `operationId`, `operationRef` and `requestBody` here.
pub(crate) fn document_json() -> Value {
    // Serializing the document cannot fail (string keys, no custom serializers); `null` would be the fallback.
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let operations = doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut());
    let operations = operations.filter_map(Value::as_object_mut).flat_map(|item| item.values_mut());
    for operation in operations {
        let responses = operation.get_mut("responses").and_then(Value::as_object_mut);
        let responses = responses.into_iter().flat_map(|map| map.values_mut());
        let links = responses.filter_map(|response| response.get_mut("links")?.as_object_mut());
        for link in links.flat_map(|links| links.values_mut()).filter_map(Value::as_object_mut) {
            for (from, to) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(value) = link.remove(from) {
                    link.insert(to.to_owned(), value);
                }
            }
        }
    }
    doc
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "openapi",
    responses((status = 200, description = "the OpenAPI document", body = serde_json::Value)),
    security(("bearer" = [])),
)]
pub(crate) async fn document() -> axum::Json<&'static Value> {
    axum::Json(&DOCUMENT)
}

/// An HTML reference of every route, rendered from the OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    operation_id = "api_reference",
    tag = "openapi",
    responses((status = 200, description = "the reference page", body = String, content_type = "text/html")),
    security(("bearer" = [])),
)]
pub(crate) async fn docs() -> Html<&'static str> {
    Html(PAGE.as_str())
}

/// Links from the responses that create a resource to the operations on it (for clients and stateful fuzzing):
/// (operation, status, path parameter, where the id is in the response, operations that take it).
const LINKS: [(&str, &str, &str, &str, &[&str]); 4] = [
    (
        "create_task",
        "201",
        "task",
        "$response.body#/id",
        &["get_task", "replace_task", "patch_task", "delete_task", "pause_task", "resume_task", "trigger_task"],
    ),
    (
        "trigger_task",
        "202",
        "execution",
        "$response.body#/execution_id",
        &["get_execution", "cancel_execution", "execution_logs", "append_execution_logs", "execution_callback"],
    ),
    (
        "register_executor",
        "201",
        "executor",
        "$response.body#/executor_id",
        &["get_executor", "set_executor_status", "executor_heartbeat", "delete_executor"],
    ),
    (
        "register_executor",
        "200",
        "executor",
        "$response.body#/executor_id",
        &["get_executor", "set_executor_status", "executor_heartbeat", "delete_executor"],
    ),
];

/// What every operation shares: the security schemes, the 401 and 5xx answers, and the links between operations.
#[derive(Debug)]
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "One of `auth.api_tokens`, as `Authorization: Bearer <token>`; \
                         needed on every `/api/v1` route once tokens are configured (off by default).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "executor_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Jobs-Signature",
                "`sha256=<hex HMAC-SHA256 of \"{timestamp}.{body}\">` keyed with `auth.executor_secret`; \
                 executors' registration, heartbeat, callback, log and deregistration requests may carry it \
                 in place of a token.",
            ))),
        );
        components.add_security_scheme(
            "executor_timestamp",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Jobs-Timestamp",
                "Unix seconds when the request was signed; a signature more than 5 minutes old is refused.",
            ))),
        );
        for (name, description) in [
            ("InvalidPath", "a path parameter is not valid UTF-8 or contains NUL"),
            ("Unauthorized", "missing or invalid credentials (only once `auth` is configured)"),
            ("Unavailable", "the database is unreachable; try again"),
            ("Internal", "an internal error; details are in the scheduler's log"),
        ] {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
            let response = ResponseBuilder::new().description(description).content("application/json", content);
            components.responses.insert(name.to_owned(), RefOr::T(response.build()));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.iter().flatten();
                let has_path_parameter = parameters.into_iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let responses = &mut operation.responses.responses;
                if has_path_parameter && !responses.contains_key("400") {
                    responses.insert("400".to_owned(), RefOr::Ref(Ref::from_response_name("InvalidPath")));
                }
                if operation.security.is_some() {
                    responses.insert("401".to_owned(), RefOr::Ref(Ref::from_response_name("Unauthorized")));
                }
                responses.insert("500".to_owned(), RefOr::Ref(Ref::from_response_name("Internal")));
                responses.insert("503".to_owned(), RefOr::Ref(Ref::from_response_name("Unavailable")));
                let id = operation.operation_id.as_deref().unwrap_or_default();
                for (source, status, parameter, value, targets) in LINKS {
                    if source != id {
                        continue;
                    }
                    let Some(RefOr::T(response)) = responses.get_mut(status) else { continue };
                    for target in targets {
                        let link = LinkBuilder::new().operation_id(*target).parameter(parameter, value).build();
                        response.links.insert((*target).to_owned(), RefOr::T(link));
                    }
                }
            }
        }
    }
}
