//! The console's executors page over a real SDK executor (listing, maintenance with a reason and back,
//! deregistration through its confirmation), and the console's contract without JavaScript: sign-in with a token,
//! the session cookie, the CSRF and origin guards, and the cached assets.

use std::time::Duration;

use reqwest::Response;
use serde_json::Value;

use jobs_model::Secret;
use jobs_storage::Backend;

use crate::e2e::start_executor;
use crate::support::{TestApp, cookie_value, form_body, no_redirects, set_cookie, spawn_app, spawn_app_with, wait_for};

const TOKEN: &str = "console-t0ken";

/// The value of cookie `name` a response sets.
fn cookie_value_of(response: &Response, name: &str) -> Option<String> {
    set_cookie(response.headers(), name).map(|line| cookie_value(&line).to_owned())
}

fn location(response: &Response) -> String {
    response.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

/// A GET with `cookie` as the `Cookie` header (empty: none).
async fn get(app: &TestApp, path: &str, cookie: &str) -> Response {
    let mut request = no_redirects().get(app.url(path));
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request sent")
}

/// A form POST with `cookie` and extra `headers`.
async fn post(app: &TestApp, path: &str, cookie: &str, headers: &[(&str, &str)], fields: &[(&str, &str)]) -> Response {
    let mut request = no_redirects()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(form_body(fields));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// The CSRF token a first visit gets, from an open console.
async fn csrf(app: &TestApp) -> String {
    let response = get(app, "/ui/executors", "").await;
    assert_eq!(response.status(), 200);
    cookie_value_of(&response, "jobs_csrf").expect("a first visit gets a CSRF cookie")
}

/// The table row of executor `id` on a page.
#[track_caller]
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!(r#"id="executor-{id}""#)).unwrap_or_else(|| panic!("no row for {id} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap_or(rest.len())]
}

async fn api_executor(app: &TestApp, id: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/executors/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_page_lists_instances_and_changes_them_through_forms() {
    let app = spawn_app().await;
    let executor = start_executor(&app, "console-1").await;
    let id = executor.executor_id().expect("registered").to_string();
    let token = csrf(&app).await;
    let cookie = format!("jobs_csrf={token}");

    let html = get(&app, "/ui/executors", &cookie).await.text().await.expect("body");
    assert!(html.contains(r#"id="group-e2e""#), "{html}");
    let listed = row(&html, &id);
    assert!(listed.contains("console-1"), "{listed}");
    assert!(listed.contains(r#"<a href="/ui/tasks?name=tick">tick</a>"#), "declared tasks link to the list: {listed}");
    assert!(listed.contains(r#"class="badge s-healthy""#) && listed.contains(r#"class="badge s-active""#), "{listed}");
    assert!(listed.contains(">Maintenance</button>") && listed.contains(r#"name="reason""#), "{listed}");
    assert!(html.contains("1 instance · 1 healthy"), "the group's counts: {html}");

    // Into maintenance with a reason, through the form.
    let path = format!("/ui/executors/{id}/status");
    let fields = [("_csrf", token.as_str()), ("status", "maintenance"), ("reason", "kernel upgrade")];
    let answer = post(&app, &path, &cookie, &[], &fields).await;
    assert_eq!(answer.status(), 303);
    let next = location(&answer);
    assert!(next.starts_with("/ui/executors?notice="), "{next}");
    let (status, api) = api_executor(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(api["status"], "maintenance", "{api}");
    assert_eq!(api["status_reason"], "kernel upgrade", "{api}");
    assert_eq!(api["status_changed_by"], "console", "{api}");
    let html = get(&app, &next, &cookie).await.text().await.expect("body");
    assert!(html.contains(r#"<div class="notice ok""#) && html.contains("is in maintenance"), "{html}");
    let listed = row(&html, &id);
    assert!(listed.contains("kernel upgrade") && listed.contains(">Back to active</button>"), "{listed}");
    assert!(!listed.contains(">Maintenance</button>"), "{listed}");

    // The state filter.
    let only = get(&app, "/ui/executors?state=maintenance", &cookie).await.text().await.expect("body");
    assert!(only.contains(&format!("executor-{id}")) && only.contains("maintenance (1)"), "{only}");
    let none = get(&app, "/ui/executors?state=active", &cookie).await.text().await.expect("body");
    assert!(!none.contains(&format!("executor-{id}")) && none.contains("No instance is active"), "{none}");

    // Back to active.
    let answer = post(&app, &path, &cookie, &[], &[("_csrf", &token), ("status", "active")]).await;
    assert_eq!(answer.status(), 303);
    let (_, api) = api_executor(&app, &id).await;
    assert_eq!((api["status"].as_str(), &api["status_reason"]), (Some("active"), &Value::Null), "{api}");

    // Bad input: an unknown word, an unknown instance.
    let answer = post(&app, &path, &cookie, &[], &[("_csrf", &token), ("status", "asleep")]).await;
    assert_eq!(answer.status(), 400);
    let unknown = "/ui/executors/0190f5d2-8e3c-7a4b-9c1d-2e3f4a5b6c7d/status";
    let answer = post(&app, unknown, &cookie, &[], &[("_csrf", &token), ("status", "active")]).await;
    assert_eq!(answer.status(), 404);
    assert_eq!(get(&app, "/ui/executors/not-an-id/deregister", &cookie).await.status(), 404);

    // Deregistration: the confirmation page, then the button.
    let confirm = get(&app, &format!("/ui/executors/{id}/deregister"), &cookie).await;
    assert_eq!(confirm.status(), 200);
    let html = confirm.text().await.expect("body");
    assert!(html.contains("console-1") && html.contains("e2e"), "{html}");
    assert!(html.contains("fail as lost") && html.contains("registers again at once"), "{html}");
    assert!(html.contains(r#"<button class="danger" type="submit">Deregister</button>"#), "{html}");
    assert!(html.contains(r#"href="/ui/executors">Cancel</a>"#), "{html}");
    let answer = post(&app, &format!("/ui/executors/{id}/deregister"), &cookie, &[], &[("_csrf", &token)]).await;
    assert_eq!(answer.status(), 303);
    assert!(location(&answer).starts_with("/ui/executors?notice="));
    let (status, _) = api_executor(&app, &id).await;
    assert_eq!(status, 404, "gone right after");

    // The SDK's next heartbeat is refused, so it registers again: a new id, active.
    let again = wait_for("the instance to register again", Duration::from_secs(15), || async {
        let (_, list) = app.get("/api/v1/executors").await;
        list.as_array().and_then(|list| list.iter().find(|executor| executor["instance_id"] == "console-1").cloned())
    })
    .await;
    assert_ne!(again["id"].as_str(), Some(id.as_str()), "{again}");
    assert_eq!(again["status"], "active", "{again}");
    let html = get(&app, "/ui/executors", &cookie).await.text().await.expect("body");
    row(&html, again["id"].as_str().expect("id"));

    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test]
async fn executors_page_without_executors_says_how_to_start_one() {
    let app = spawn_app().await;
    let html = get(&app, "/ui/executors", "").await.text().await.expect("body");
    assert!(html.contains("cargo run -p example-executor") && html.contains("JOBS_SCHEDULER_URL"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn console_signs_in_with_a_token_and_guards_every_change() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.auth.api_tokens = vec![Secret::new(TOKEN)])
        .await
        .expect("SQLite is always available");

    let first = get(&app, "/", "").await;
    assert_eq!(first.status(), 303);
    assert_eq!(location(&first), "/ui/login?next=%2F");
    let login = get(&app, "/ui/login?next=%2F", "").await;
    assert_eq!(login.status(), 200);
    let token = cookie_value_of(&login, "jobs_csrf").expect("the login page sets the CSRF cookie");
    let csrf_cookie = format!("jobs_csrf={token}");

    let wrong = [("_csrf", token.as_str()), ("next", "/"), ("token", "wrong-token")];
    let refused = post(&app, "/ui/login", &csrf_cookie, &[], &wrong).await;
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(refused.headers(), "jobs_session").is_none());
    let html = refused.text().await.expect("body");
    assert!(html.contains(r#"action="/ui/login""#) && html.contains("this token is not accepted"), "{html}");
    assert!(html.contains(r#"aria-invalid="true""#), "{html}");

    let right = [("_csrf", token.as_str()), ("next", "/"), ("token", TOKEN)];
    let signed_in = post(&app, "/ui/login", &csrf_cookie, &[], &right).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), "/");
    let line = set_cookie(signed_in.headers(), "jobs_session").expect("a session cookie");
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict"), "{line}");
    assert!(!line.contains(TOKEN), "the cookie does not carry the token: {line}");
    let session = cookie_value_of(&signed_in, "jobs_session").expect("a session value");
    let cookie = format!("{csrf_cookie}; jobs_session={session}");
    let overview = get(&app, "/", &cookie).await;
    assert_eq!(overview.status(), 200);
    let html = overview.text().await.expect("body");
    assert!(html.contains("<h1>Overview</h1>"), "{html}");

    // Every asset the page names is served under its versioned path, cached for a year.
    let assets: Vec<&str> = html.split('"').filter(|part| part.starts_with("/ui/assets/")).collect::<Vec<_>>();
    assert_eq!(assets.len(), 3, "the stylesheet and two scripts: {assets:?}");
    for path in assets {
        let response = get(&app, path, "").await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name| response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default();
        assert_eq!(header("cache-control"), "public, max-age=31536000, immutable", "{path}");
        let expected =
            if path.ends_with(".css") { "text/css; charset=utf-8" } else { "text/javascript; charset=utf-8" };
        assert_eq!(header("content-type"), expected, "{path}");
    }

    // The REST API still wants its bearer token, session or not.
    let api = no_redirects().get(app.url("/api/v1/tasks")).send().await.expect("sent");
    assert_eq!(api.status(), 401);
    let api = no_redirects().get(app.url("/api/v1/tasks")).bearer_auth(TOKEN).send().await.expect("sent");
    assert_eq!(api.status(), 200);

    // Changes need the CSRF field, and never come from another site.
    let unknown = "/ui/executors/0190f5d2-8e3c-7a4b-9c1d-2e3f4a5b6c7d/status";
    let without = post(&app, unknown, &cookie, &[], &[("status", "active")]).await;
    assert_eq!(without.status(), 403);
    let foreign = [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")];
    let cross = post(&app, unknown, &cookie, &foreign, &[("_csrf", &token), ("status", "active")]).await;
    assert_eq!(cross.status(), 403);
    // A notice shows only what this console wrote: the code's own words, and an instance id that is one.
    let spoof = "/ui/executors?notice=Session+expired%2C+sign+in+at+evil.example&instance=x";
    let html = get(&app, spoof, &cookie).await.text().await.expect("body");
    assert!(!html.contains("evil.example") && !html.contains(r#"class="notice"#), "{html}");
    let html = get(&app, "/ui/executors?notice=active&instance=%3Cb%3Eevil+words", &cookie).await;
    let html = html.text().await.expect("body");
    assert!(html.contains("the instance is active again") && !html.contains("evil words"), "{html}");
    let allowed = post(&app, unknown, &cookie, &[], &[("_csrf", &token), ("status", "active")]).await;
    assert_eq!(allowed.status(), 404, "the same request from this console passes the guard");

    // Signing out clears the cookie; without it the console asks to sign in again.
    let out = post(&app, "/ui/logout", &cookie, &[], &[("_csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/ui/login");
    let cleared = set_cookie(out.headers(), "jobs_session").expect("the session cookie is cleared");
    assert!(cleared.starts_with("jobs_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let again = get(&app, "/", &csrf_cookie).await;
    assert_eq!(again.status(), 303);
    app.stop().await;
}
