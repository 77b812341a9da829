//! Errors as pages: a console handler's failure goes through [`ApiError`] (so its status is the API's) and is shown
//! as a page that says what happened and where to go next.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use crate::ApiError;
use crate::console::layout;

/// A console handler's error.
#[derive(Debug)]
pub(crate) struct PageError(ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

pub(crate) type PageResult<T = Response> = Result<T, PageError>;

impl PageError {
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self(ApiError::not_found(message))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self(ApiError::invalid(message))
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Cannot do that",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::FORBIDDEN => "Refused",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable for now",
            _ => "Something went wrong",
        };
        let hint = match status {
            StatusCode::SERVICE_UNAVAILABLE => "The database does not answer. Reload this page in a few seconds.",
            StatusCode::FORBIDDEN => "Reload the page you came from and try again.",
            _ => "",
        };
        let mut response = layout::respond(standalone(title, self.0.message(), hint));
        *response.status_mut() = status;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

/// An error page that needs nothing from the database.
fn standalone(title: &str, message: &str, hint: &str) -> Markup {
    let content = html! {
        header.top { div.top-inner {
            a.brand href="/" { "jobs" }
            nav.nav aria-label="Main" {
                a href="/" { "Overview" } a href="/ui/tasks" { "Tasks" } a href="/ui/executors" { "Executors" }
            }
        } }
        main id="main" {
            div.panel {
                h1 { (title) }
                p { (message) }
                @if !hint.is_empty() { p.muted { (hint) } }
                p { a href="/" { "Back to the overview" } }
            }
        }
    };
    layout::shell(title, None, content)
}

/// Unknown paths under `/ui/`.
pub(crate) async fn not_found() -> PageError {
    PageError::not_found("there is no such page")
}
