//! The console's task page, manual trigger and execution page, over HTTP as a browser without JavaScript uses
//! them: plain GETs and form POSTs with the CSRF cookie, redirects checked by hand.

use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{Executor, JobContext, JobError};

use crate::support::{TestApp, spawn_app, wait_for};

/// A client that does not follow redirects, so that the 303s can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds")
}

/// A page: its status and its HTML with the entities our assertions meet turned back into text.
async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = browser().get(app.url(path)).send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, unescape(&response.text().await.expect("body read")))
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The CSRF token the console hands out with any page (in its cookie).
async fn csrf(app: &TestApp) -> String {
    let response = browser().get(app.url("/ui/tasks/nothing-here")).send().await.expect("request sent");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix("jobs_csrf="))
        .and_then(|rest| rest.split(';').next())
        .expect("a jobs_csrf cookie")
        .to_owned()
}

/// Posts a form as a browser does: the cookie, and the same token as `_csrf`. Returns the status, the
/// `Location` header and the body.
async fn post_form(app: &TestApp, path: &str, token: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
    let mut body = format!("_csrf={}", encode(token));
    for (name, value) in fields {
        body.push_str(&format!("&{}={}", encode(name), encode(value)));
    }
    let response = browser()
        .post(app.url(path))
        .header("cookie", format!("jobs_csrf={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let location =
        response.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, unescape(&response.text().await.expect("body read")))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn execution(app: &TestApp, id: &str) -> Value {
    let (status, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(status, 200, "{execution}");
    execution
}

async fn console_job(ctx: JobContext) -> Result<Value, JobError> {
    ctx.log("first line from the handler");
    ctx.log("second line from the handler");
    Ok(json!({ "seen": ctx.parameters() }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_page_shows_the_definition_and_reads_its_filters() {
    let app = spawn_app().await;
    let task = app
        .create_task(json!({
            "name": "nightly_report",
            "description": "Sends the nightly report",
            "cron_expression": "0 0 3 * * *",
            "timezone": "Europe/Paris",
            "max_retry": 2,
            "retry_backoff": {"type": "fixed", "delay_seconds": 10},
            "parameters": {"region": "eu"}
        }))
        .await;
    let id = task["id"].as_str().expect("task id");

    let (status, html) = page(&app, "/ui/tasks/nightly_report").await;
    assert_eq!(status, 200, "{html}");
    for text in [
        "Sends the nightly report",
        "0 0 3 * * *",
        "Europe/Paris",
        "fixed backoff of 10.0 s",
        "\"region\": \"eu\"",
        "No executions yet.",
        "The next fire is at",
        "Trigger it now",
    ] {
        assert!(html.contains(text), "the page shows {text:?}: {html}");
    }
    assert!(html.contains(&format!("href=\"/ui/tasks/{id}/edit\"")), "{html}");
    assert!(html.contains(&format!("action=\"/ui/tasks/{id}/pause\"")), "{html}");
    assert!(html.contains(&format!("href=\"/ui/tasks/{id}/delete\"")), "{html}");

    // Once there is an execution the filters show; a time that does not read is said at its field.
    let (status, _) = app.post("/api/v1/tasks/nightly_report/trigger", json!({})).await;
    assert_eq!(status, 202);
    let (status, html) = page(&app, &format!("/ui/tasks/{id}?from=yesterday&status=failed")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("name=\"status\"") && html.contains("name=\"trigger_type\""), "{html}");
    assert!(html.contains("id=\"err-from\" role=\"alert\">`yesterday` is not a time"), "{html}");
    assert!(html.contains("<option value=\"failed\" selected>"), "the status filter is kept: {html}");

    let (status, html) = page(&app, &format!("/ui/tasks/{id}?from=2020-01-01+00:00&trigger_type=manual")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"executions\""), "the manual execution is listed: {html}");
    let (status, html) = page(&app, &format!("/ui/tasks/{id}?from=2999-01-01T00:00")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No executions match these filters"), "{html}");

    let (_, html) = page(&app, &format!("/ui/tasks/{id}?saved=1")).await;
    assert!(html.contains("The task was saved."), "{html}");
    let (status, _) = page(&app, "/ui/tasks/no_such_task").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_are_paged_with_the_filters_kept() {
    let app = spawn_app().await;
    let task = app.create_task(json!({"name": "often"})).await;
    let id = task["id"].as_str().expect("task id");
    for _ in 0..26 {
        let (status, answer) = app.post("/api/v1/tasks/often/trigger", json!({})).await;
        assert_eq!(status, 202, "{answer}");
    }
    let rows = |html: &str| html.matches("<td class=\"mono\">").count();
    let (status, html) = page(&app, &format!("/ui/tasks/{id}?trigger_type=manual")).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(rows(&html), 25, "{html}");
    let older = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.contains("cursor="))
        .expect("an Older link")
        .to_owned();
    assert!(older.contains("trigger_type=manual"), "{older}");
    let (status, html) = page(&app, &older).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(rows(&html), 1, "{html}");
    assert!(html.contains(">Newest<") && !html.contains(">Older<"), "{html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_through_the_form_runs_and_its_page_follows_it() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("console")
        .instance_id("console-1")
        .scheduler_urls([app.address.clone()])
        .handler("console_job", console_job)
        .build()
        .expect("executor builds");
    let executor = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), executor.registered()).await.expect("executor registers");
    app.create_task(json!({"name": "console_job", "parameters": {"k": 0, "keep": true}})).await;

    let (status, html) = page(&app, "/ui/tasks/console_job/trigger").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"parameters\"") && html.contains(">{}</textarea>"), "{html}");
    assert!(html.contains("\"keep\": true"), "the task's own parameters are shown: {html}");

    let token = csrf(&app).await;
    let (status, _, html) =
        post_form(&app, "/ui/tasks/console_job/trigger", &token, &[("parameters", "{\"k\": ")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("`parameters` is not valid JSON"), "{html}");
    assert!(html.contains(">{\"k\": </textarea>"), "the text is kept: {html}");
    let (status, _, html) = post_form(&app, "/ui/tasks/console_job/trigger", &token, &[("parameters", "[1]")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("`parameters` must be a JSON object"), "{html}");

    let (status, location, _) =
        post_form(&app, "/ui/tasks/console_job/trigger", &token, &[("parameters", "{\"k\": 1}")]).await;
    assert_eq!(status, 303);
    let id = location.strip_prefix("/ui/executions/").expect("to the execution page").to_owned();
    let (status, html) = page(&app, &location).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("\"k\": 1") && html.contains("\"keep\": true"), "merged parameters: {html}");
    assert_eq!(execution(&app, &id).await["parameters"], json!({"k": 1, "keep": true}));

    let html = wait_for("the page to show the run's success and log lines", Duration::from_secs(30), || async {
        let (_, html) = page(&app, &location).await;
        (html.contains("badge s-success") && html.contains("second line from the handler")).then_some(html)
    })
    .await;
    let first = html.find("first line from the handler").expect("the first line");
    assert!(first < html.find("second line from the handler").expect("the second line"), "lines in order");
    assert!(html.contains("console-1"), "the instance is named: {html}");
    assert!(html.contains("<li class=\"s-success\">"), "the attempt on the timeline: {html}");
    assert!(!html.contains("Cancel execution"), "{html}");

    let (status, live) = page(&app, &format!("{location}/live")).await;
    assert_eq!(status, 200);
    assert!(live.starts_with("<div id=\"live\""), "{live}");
    assert!(!live.contains("hx-trigger"), "a final execution is not polled: {live}");

    let (_, task_page) = page(&app, "/ui/tasks/console_job").await;
    assert!(task_page.contains(&format!("href=\"/ui/executions/{id}\"")), "{task_page}");
    assert!(task_page.contains("<svg class=\"chart\""), "the duration chart: {task_page}");

    executor.shutdown().await.expect("executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_execution_is_cancelled_through_the_form_once() {
    let app = spawn_app().await;
    // No executor: each attempt fails at dispatch and the execution waits an hour, pending, for its retry.
    app.create_task(json!({
        "name": "waits",
        "max_retry": 3,
        "retry_backoff": {"type": "fixed", "delay_seconds": 3600}
    }))
    .await;
    let (status, answer) = app.post("/api/v1/tasks/waits/trigger", json!({})).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["execution_id"].as_str().expect("execution id").to_owned();
    let path = format!("/ui/executions/{id}");

    let (status, html) = page(&app, &path).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(execution(&app, &id).await["status"], "pending");
    assert!(html.contains(&format!("hx-get=\"{path}/live\" hx-trigger=\"every 2s\" hx-swap=\"outerHTML\"")), "{html}");
    assert!(html.contains(&format!("action=\"{path}/cancel\"")) && html.contains("Cancel execution"), "{html}");

    let token = csrf(&app).await;
    let (status, location, _) = post_form(&app, &format!("{path}/cancel"), &token, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(location, path);
    assert_eq!(execution(&app, &id).await["status"], "cancelled");

    let (status, location, _) = post_form(&app, &format!("{path}/cancel"), &token, &[]).await;
    assert_eq!(status, 303, "a second cancel goes back to the page");
    let (status, html) = page(&app, &location).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("class=\"notice info\""), "{html}");
    assert!(html.contains("had already ended as cancelled"), "{html}");
    assert!(!html.contains("hx-trigger"), "{html}");

    let (status, html) = page(&app, "/ui/executions/not-a-uuid").await;
    assert_eq!(status, 404, "{html}");
    let (status, _) = page(&app, &format!("/ui/executions/{}", jobs_model::ExecutionId::new())).await;
    assert_eq!(status, 404);
    app.stop().await;
}
