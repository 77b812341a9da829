//! The page shell: the header every page shares (navigation, the cluster's leader and instances, unhealthy
//! executors), the assets, and the CSRF token for forms and htmx.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;
use crate::console::assets;
use crate::console::executors::is_unhealthy;
use crate::console::session::{CSRF_FIELD, Session};

/// The section a page belongs to, marked in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Tasks,
    Executors,
}

/// What every page is served with: no framing by other sites, scripts and styles only from here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// A whole page: the shared header over `body`.
pub(crate) async fn page(state: &AppState, session: &Session, nav: Nav, title: &str, body: Markup) -> Response {
    let header = cluster_header(state, session, nav).await;
    respond(document(title, session, html! { (header) main id="main" { (body) } }))
}

/// A page without the cluster header (the login page).
pub(crate) fn bare(title: &str, session: &Session, body: Markup) -> Markup {
    let header = html! {
        header.top { div.top-inner { a.brand href="/" { "jobs" } } }
    };
    document(title, session, html! { (header) main id="main" { (body) } })
}

/// A page or fragment with the console's headers.
pub(crate) fn respond(markup: Markup) -> Response {
    let mut response = Html(markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

fn document(title: &str, session: &Session, content: Markup) -> Markup {
    shell(title, Some(&session.csrf), content)
}

/// The document around `content`; `csrf` is left out of pages that carry no form (the error pages).
pub(crate) fn shell(title: &str, csrf: Option<&str>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = csrf { meta name="csrf-token" content=(csrf); }
                // No inline styles (the policy forbids them) and no `eval`.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · jobs" }
                link rel="stylesheet" href=(assets::href("console.css"));
                script src=(assets::href("htmx.min.js")) defer {}
                script src=(assets::href("console.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (content)
            }
        }
    }
}

/// The hidden field every console form carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

async fn cluster_header(state: &AppState, session: &Session, nav: Nav) -> Markup {
    let engine = &state.engine;
    let cluster = engine.cluster_status().await.ok();
    let executors = engine.executors(None, None).await.ok();
    let unhealthy = executors.as_ref().map(|views| views.iter().filter(|view| is_unhealthy(view)).count());
    let current = |item: Nav| (item == nav).then_some("page");
    html! {
        header.top { div.top-inner {
            a.brand href="/" { "jobs" }
            nav.nav aria-label="Main" {
                a href="/" aria-current=[current(Nav::Overview)] { "Overview" }
                a href="/ui/tasks" aria-current=[current(Nav::Tasks)] { "Tasks" }
                a href="/ui/executors" aria-current=[current(Nav::Executors)] { "Executors" }
            }
            div.cluster {
                @match &cluster {
                    Some(cluster) => {
                        span.pill title={ "this page was served by " (cluster.instance_id) } {
                            "leader: "
                            @match &cluster.leader_id {
                                Some(leader) => strong { (leader) },
                                None => strong { "none" },
                            }
                        }
                        span.pill { (cluster.instances.len()) @if cluster.instances.len() == 1 { " instance" } @else { " instances" } }
                    }
                    None => span.pill.alarm { "database unreachable" },
                }
                @match unhealthy {
                    Some(0) => a.pill href="/ui/executors" { "all executors healthy" },
                    Some(count) => a.pill.alarm href="/ui/executors" { (count) " unhealthy executor" @if count != 1 { "s" } },
                    None => {},
                }
                @if session.auth() {
                    form method="post" action="/ui/logout" {
                        (csrf_field(session))
                        button type="submit" { "Sign out" }
                    }
                }
            }
        } }
    }
}
