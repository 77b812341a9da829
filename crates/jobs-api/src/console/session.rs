//! Who may use the console, and the guard on every change.
//!
//! - With `auth.api_tokens` set, the console asks for one of them on `/ui/login` and keeps a session in an
//!   `HttpOnly`, `SameSite=Strict` cookie (`Secure` over HTTPS: `server.tls`, or a proxy's `X-Forwarded-Proto`):
//!   `{expires}.{nonce}.{mac}`, the mac an HMAC of the expiry and nonce keyed by the token that signed in. Any instance with the same tokens
//!   accepts it, and removing a token from the config ends its sessions. Without tokens the console is open.
//! - Every request that changes something (any method but `GET` and `HEAD`) must carry the CSRF token: the value of
//!   the `jobs_csrf` cookie, repeated in the form field `_csrf` or the `X-CSRF-Token` header. A cross-site page can
//!   neither read the cookie nor make the browser send it (`SameSite=Strict`); a request that a browser marks as
//!   cross-site is refused as well.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use jobs_model::signature::{self, constant_time_eq};
use jobs_model::{Secret, Timestamp};

use crate::AuthConfig;
use crate::console::error::PageError;
use crate::console::layout;

const SESSION_COOKIE: &str = "jobs_session";
const CSRF_COOKIE: &str = "jobs_csrf";
/// The form field that repeats the CSRF cookie.
pub(crate) const CSRF_FIELD: &str = "_csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// How long a console session lasts.
const SESSION_SECONDS: i64 = 12 * 3600;
/// The largest form the guard reads to find the CSRF field.
const MAX_FORM_BYTES: usize = 1 << 20;

/// What the gate checks requests against.
#[derive(Debug)]
pub(crate) struct Gate {
    tokens: Vec<Secret>,
    /// This instance serves HTTPS itself (`server.tls`).
    https: bool,
}

impl Gate {
    pub(crate) fn new(config: &AuthConfig, https: bool) -> Arc<Self> {
        Arc::new(Self { tokens: config.api_tokens.clone(), https })
    }

    fn session_is_valid(&self, cookie: &str, now_unix: i64) -> bool {
        let mut parts = cookie.splitn(3, '.');
        let (Some(expires), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else { return false };
        if expires <= now_unix {
            return false;
        }
        self.tokens.iter().any(|token| constant_time_eq(session_mac(token, expires, nonce).as_bytes(), mac.as_bytes()))
    }

    fn token_matches(&self, given: &str) -> Option<&Secret> {
        self.tokens.iter().find(|token| constant_time_eq(token.expose().as_bytes(), given.as_bytes()))
    }
}

/// What a console handler knows of its request: put in the request's extensions by [`gate`].
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The CSRF token every form of the page repeats.
    pub(crate) csrf: String,
    gate: Arc<Gate>,
    /// Served over HTTPS (directly or behind a proxy that says so): cookies are `Secure`.
    secure: bool,
}

impl Session {
    /// Tokens are configured, so the console has a login and a logout.
    pub(crate) fn auth(&self) -> bool {
        !self.gate.tokens.is_empty()
    }
}

/// The console's middleware: the session (or a redirect to the login page), then the CSRF guard on changes.
pub(crate) async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/ui/assets/") {
        return next.run(request).await;
    }
    let cookies = cookies(request.headers());
    let (csrf, fresh) = match cookies.get(CSRF_COOKIE) {
        Some(value) if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ((*value).to_owned(), false)
        }
        _ => (random_hex(), true),
    };
    let secure = gate.https || is_https(request.headers());
    let now = Timestamp::now().unix_seconds();
    let signed_in =
        gate.tokens.is_empty() || cookies.get(SESSION_COOKIE).is_some_and(|value| gate.session_is_valid(value, now));
    let changes = request.method() != Method::GET && request.method() != Method::HEAD;
    let mut request = request;
    if changes {
        if is_cross_site(request.headers()) {
            return PageError::forbidden("a request from another site cannot change anything here").into_response();
        }
        let (checked, given) = match csrf_of(request).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        request = checked;
        if fresh || !given.as_deref().is_some_and(|given| constant_time_eq(given.as_bytes(), csrf.as_bytes())) {
            return PageError::forbidden("this form has expired or did not come from this console").into_response();
        }
    }
    if !signed_in && path != "/ui/login" {
        return to_login(&request);
    }
    request.extensions_mut().insert(Session { csrf: csrf.clone(), gate: gate.clone(), secure });
    let mut response = next.run(request).await;
    if fresh {
        let cookie = cookie(CSRF_COOKIE, &csrf, None, secure);
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A page, or a form sent once the session ended, goes to the login page, which comes back to that page after; an
/// htmx request is answered 401 with `HX-Redirect` to the same place, which htmx follows.
fn to_login(request: &Request) -> Response {
    let htmx = request.headers().contains_key("hx-request");
    // A GET comes back to itself; a form or an htmx request to the page it was sent from.
    let from_page = if request.method() == Method::GET && !htmx {
        request.uri().path_and_query().map(|path| path.as_str().to_owned())
    } else {
        ["hx-current-url", "referer"]
            .iter()
            .filter_map(|name| request.headers().get(*name)?.to_str().ok())
            .filter_map(|url| url::Url::parse(url).ok())
            .map(|url| url[url::Position::BeforePath..url::Position::AfterQuery].to_owned())
            .next()
    };
    let path = safe_next(from_page.as_deref());
    let target =
        format!("/ui/login?next={}", url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>());
    if !htmx {
        return Redirect::to(&target).into_response();
    }
    let mut response = (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

/// The request with its body read back in, and the CSRF token it carries (header first, then the form field).
async fn csrf_of(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(value) = request.headers().get(CSRF_HEADER).and_then(|value| value.to_str().ok()) {
        let value = value.to_owned();
        return Ok((request, Some(value)));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        PageError::invalid(format!("the form is larger than {} KiB", MAX_FORM_BYTES / 1024)).into_response()
    })?;
    let given =
        url::form_urlencoded::parse(&bytes).find(|(key, _)| key == CSRF_FIELD).map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), given))
}

/// A browser marks the requests a page of another site makes (`Sec-Fetch-Site`), and sandboxed or opaque pages send
/// `Origin: null`. (`Origin` is not compared with `Host`: a proxy in front may rewrite `Host`; the CSRF token is the
/// guard that holds everywhere.)
fn is_cross_site(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok());
    header("sec-fetch-site") == Some("cross-site") || header("origin") == Some("null")
}

/// The session cookie's HMAC, keyed by the token that signed in; the `console-session:` prefix keeps it apart from
/// the executor signatures made with the same function.
fn session_mac(token: &Secret, expires: i64, nonce: &str) -> String {
    signature::sign(token.expose().as_bytes(), expires, format!("console-session:{nonce}").as_bytes())
}

fn is_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()) == Some("https")
}

fn cookies(headers: &HeaderMap) -> HashMap<&str, &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .collect()
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, the whole site; `max_age` `None` lasts for the browser's
/// session, `Some(0)` removes the cookie.
fn cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    // Names and values are ours: ASCII letters, digits, `.` and `=`.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_hex() -> String {
    rand::random::<[u8; 16]>().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `path` when it is a path of this site, never another origin: it starts with one `/`, and holds no backslash and
/// no control character (browsers drop tabs and newlines from a URL, so `/\t/evil.example` would become
/// `//evil.example`).
pub(crate) fn local_path(path: Option<&str>) -> Option<&str> {
    path.filter(|path| {
        path.starts_with('/') && !path.starts_with("//") && !path.chars().any(|c| c == '\\' || c.is_control())
    })
}

fn safe_next(next: Option<&str>) -> &str {
    local_path(next).unwrap_or("/")
}

pub(crate) async fn login_page(
    axum::Extension(session): axum::Extension<Session>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    if !session.auth() {
        return Redirect::to("/").into_response();
    }
    layout::respond(login_markup(&session, safe_next(query.next.as_deref()), None))
}

pub(crate) async fn login(axum::Extension(session): axum::Extension<Session>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(token) = session.gate.token_matches(form.token.trim()) else {
        let error = if form.token.trim().is_empty() { "enter an API token" } else { "this token is not accepted" };
        let mut response = layout::respond(login_markup(&session, next, Some(error)));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    let expires = Timestamp::now().unix_seconds() + SESSION_SECONDS;
    let nonce = random_hex();
    let mac = session_mac(token, expires, &nonce);
    let value = format!("{expires}.{nonce}.{mac}");
    let mut response = Redirect::to(next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(SESSION_COOKIE, &value, Some(SESSION_SECONDS), session.secure));
    response
}

pub(crate) async fn logout(axum::Extension(session): axum::Extension<Session>) -> Response {
    let mut response = Redirect::to(if session.auth() { "/ui/login" } else { "/" }).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0), session.secure));
    response
}

fn login_markup(session: &Session, next: &str, error: Option<&str>) -> maud::Markup {
    let body = html! {
        div.login.panel {
            h1 { "Sign in" }
            p.muted { "This console asks for one of the scheduler's API tokens (" code { "auth.api_tokens" } ")." }
            form method="post" action="/ui/login" {
                input type="hidden" name=(CSRF_FIELD) value=(session.csrf);
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="current-password" required
                        autofocus aria-invalid=[error.map(|_| "true")] aria-describedby="token-error";
                    p.error #token-error role="alert" { @if let Some(error) = error { (error) } }
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    layout::bare("Sign in", session, body)
}

#[cfg(test)]
mod tests;
