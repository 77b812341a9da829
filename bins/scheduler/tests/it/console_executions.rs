//! The console's task page, manual trigger and execution page, over HTTP as a browser without JavaScript uses
//! them: plain GETs and form POSTs with the CSRF cookie, redirects checked by hand.

use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::{Executor, JobContext, JobError};

use crate::support::{Console, TestApp, no_redirects, spawn_app, wait_for};

/// A page: its status and its HTML with the entities our assertions meet turned back into text.
async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = no_redirects().get(app.url(path)).send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, unescape(&response.text().await.expect("body read")))
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Posts a form as a browser does (see [`Console::post`]), the body unescaped like [`page`]'s.
async fn post_form(console: &Console, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
    let (status, location, body) = console.post(path, fields).await;
    (status, location, unescape(&body))
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

    let console = Console::open(&app).await;
    let (status, _, html) = post_form(&console, "/ui/tasks/console_job/trigger", &[("parameters", "{\"k\": ")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("invalid `parameters`: not valid JSON"), "{html}");
    assert!(html.contains(">{\"k\": </textarea>"), "the text is kept: {html}");
    let (status, _, html) = post_form(&console, "/ui/tasks/console_job/trigger", &[("parameters", "[1]")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("invalid `parameters`: must be a JSON object"), "{html}");

    let (status, location, _) =
        post_form(&console, "/ui/tasks/console_job/trigger", &[("parameters", "{\"k\": 1}")]).await;
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

    let console = Console::open(&app).await;
    let (status, location, _) = post_form(&console, &format!("{path}/cancel"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(location, path);
    assert_eq!(execution(&app, &id).await["status"], "cancelled");

    let (status, location, _) = post_form(&console, &format!("{path}/cancel"), &[]).await;
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

/// Cron fires shed as overloaded in the last minutes make the overview say that the cluster sheds load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_says_when_the_cluster_sheds_load() {
    let Some(app) = crate::support::spawn_app_on(jobs_storage::Backend::MySql).await else { return };
    let task = app.create_task(json!({"name": "shed", "cron_expression": "0 0 3 * * *"})).await;
    let (_, before) = page(&app, "/").await;
    assert!(!before.contains("shedding load"), "nothing shed yet");

    let store = app.store().expect("a MySQL store");
    let id = jobs_model::TaskId::parse(task["id"].as_str().unwrap()).unwrap();
    let task = store.get_task(id).await.unwrap().unwrap();
    let now = jobs_model::Timestamp::now();
    let mut shed = jobs_model::Execution::pending(&task, jobs_model::TriggerType::Cron, now, Default::default(), now);
    shed.status = jobs_model::ExecutionStatus::Missed;
    shed.finished_at = Some(now);
    shed.error = Some("overloaded: every instance was at its max_concurrency past scheduler.max_lateness".to_owned());
    store.insert_execution(&shed).await.unwrap();

    let (status, after) = page(&app, "/").await;
    assert_eq!(status, 200);
    assert!(after.contains("The cluster is shedding load."), "{after}");
    assert!(after.contains("1 cron fires in the last 5 minutes"), "{after}");
    app.stop().await;
}
