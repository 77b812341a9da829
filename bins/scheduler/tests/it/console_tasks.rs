//! The console's task pages: the list and its search, the task form and its live checks, pause, resume and delete.

use serde_json::{Value, json};

use crate::support::{Console, no_redirects, spawn_app};

/// Text as maud writes it into HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The fields of a complete task form.
fn form<'a>(name: &'a str, cron: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("description", "made through the console"),
        ("cron_expression", cron),
        ("timezone", "Europe/Berlin"),
        ("execution_mode", "sequential"),
        ("load_balance_strategy", "round_robin"),
        ("max_retry", "2"),
        ("retry_backoff_type", "exponential"),
        ("retry_delay_seconds", "10"),
        ("retry_max_delay_seconds", "300"),
        ("timeout_seconds", "600"),
        ("misfire_policy", "fire_once"),
        ("executor", ""),
        ("parameters", "{\"region\": \"eu\"}"),
        ("enabled", "true"),
    ]
}

#[tokio::test]
async fn the_list_explains_an_empty_console_and_finds_tasks_by_name() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    let (status, page) = browser.get("/ui/tasks").await;
    assert_eq!(status, 200);
    assert!(page.contains("No tasks yet"), "{page}");
    assert!(page.contains("cargo run -p example-executor"), "{page}");

    app.create_task(json!({"name": "alpha_report", "cron_expression": "0 0 2 * * *"})).await;
    app.create_task(json!({"name": "beta_sync", "enabled": false})).await;
    let (status, page) = browser.get("/ui/tasks").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="task-table""#), "{page}");
    assert!(page.contains("alpha_report") && page.contains("beta_sync"), "{page}");
    assert!(page.contains("0 0 2 * * *") && page.contains("manual only"), "{page}");

    let (status, page) = browser.get("/ui/tasks?name=alpha").await;
    assert_eq!(status, 200);
    assert!(page.contains("alpha_report") && !page.contains("beta_sync"), "{page}");
    let (_, page) = browser.get("/ui/tasks?enabled=paused").await;
    assert!(page.contains("beta_sync") && !page.contains("alpha_report"), "{page}");
    let (_, page) = browser.get("/ui/tasks?name=nothing-like-it").await;
    assert!(page.contains("No task has a name containing"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn the_list_pages_by_cursor() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    for index in 0..51 {
        app.create_task(json!({"name": format!("paged_{index:02}")})).await;
    }
    let (_, page) = browser.get("/ui/tasks?name=paged").await;
    assert!(page.contains("paged_00") && page.contains("paged_49") && !page.contains("paged_50"), "{page}");
    let next = page
        .split(r#"<a href=""#)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.contains("cursor="))
        .expect("a next page link")
        .replace("&amp;", "&");
    assert!(page.contains("Next page"), "{page}");
    let (status, page) = browser.get(&next).await;
    assert_eq!(status, 200);
    assert!(page.contains("paged_50") && !page.contains("paged_49") && !page.contains("Next page"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_task_made_through_the_form_is_the_api_s_task() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    let (status, page) = browser.get("/ui/tasks/new").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"name="cron_expression""#) && page.contains(r#"id="cron-preview""#), "{page}");

    let (status, location, body) = browser.post("/ui/tasks", &form("nightly_export", "0 30 1 * * *")).await;
    assert_eq!(status, 303, "{body}");
    let (code, task) = app.get("/api/v1/tasks/nightly_export").await;
    assert_eq!(code, 200, "{task}");
    assert_eq!(location, format!("/ui/tasks/{}?created=1", task["id"].as_str().expect("an id")));
    assert_eq!(task["cron_expression"], "0 30 1 * * *");
    assert_eq!(task["timezone"], "Europe/Berlin");
    assert_eq!(task["execution_mode"], "sequential");
    assert_eq!(task["retry_backoff"], json!({"type": "exponential", "delay_seconds": 10, "max_delay_seconds": 300}));
    assert_eq!(task["parameters"], json!({"region": "eu"}));

    // The edit form shows it, and saving it replaces the task.
    let id = task["id"].as_str().expect("an id").to_owned();
    let (status, page) = browser.get(&format!("/ui/tasks/{id}/edit")).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"value="0 30 1 * * *""#) && page.contains("01:30:00"), "{page}");
    let mut fields = form("nightly_export", "");
    fields.retain(|(key, _)| *key != "enabled");
    let (status, location, body) = browser.post(&format!("/ui/tasks/{id}"), &fields).await;
    assert_eq!((status, location.as_str()), (303, format!("/ui/tasks/{id}?saved=1").as_str()), "{body}");
    let (_, task) = app.get("/api/v1/tasks/nightly_export").await;
    assert_eq!((task["cron_expression"].clone(), task["enabled"].clone()), (Value::Null, json!(false)));

    // A taken name is a conflict, shown at the name field.
    let (status, _, page) = browser.post("/ui/tasks", &form("nightly_export", "")).await;
    assert_eq!(status, 409);
    assert!(page.contains("task `nightly_export` already exists"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_cron_expression_is_shown_at_its_field_with_the_values_kept() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    let (code, refused) = app.get("/api/v1/cron/preview?expression=61%20*%20*%20*%20*").await;
    assert_eq!(code, 400);
    let message = refused["error"]["message"].as_str().expect("a message").to_owned();

    let mut fields = form("bad_schedule", "61 * * * *");
    fields.push(("max_retry", "two"));
    fields.retain(|field| *field != ("max_retry", "2"));
    let (status, _, page) = browser.post("/ui/tasks", &fields).await;
    assert_eq!(status, 400, "{page}");
    let error = format!(r#"<p class="error" id="err-cron_expression" aria-live="polite">{}</p>"#, escaped(&message));
    assert!(page.contains(&error), "{error} not in {page}");
    assert!(page.contains("`two` is not a whole number"), "{page}");
    assert!(page.contains(r#"aria-invalid="true" aria-describedby="hint-cron_expression err-cron_expression""#));
    for kept in ["bad_schedule", "61 * * * *", "made through the console", "Europe/Berlin", "two"] {
        assert!(page.contains(&format!(r#"value="{kept}""#)), "{kept} not kept in {page}");
    }
    assert!(page.contains(&escaped("{\"region\": \"eu\"}")), "{page}");
    let (code, _) = app.get("/api/v1/tasks/bad_schedule").await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_live_check_answers_errors_and_the_preview_out_of_band() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    let (status, _, fragment) = browser.post("/ui/tasks/check", &form("checked", "61 * * * *")).await;
    assert_eq!(status, 200);
    assert!(
        fragment.contains(r#"id="err-cron_expression" aria-live="polite" hx-swap-oob="true">invalid cron expression"#),
        "{fragment}"
    );
    assert!(fragment.contains(r#"id="err-name" aria-live="polite" hx-swap-oob="true"></p>"#), "{fragment}");
    assert!(fragment.contains(r#"id="cron-preview""#), "{fragment}");

    let (status, _, fragment) = browser.post("/ui/tasks/check", &form("checked", "0 0 2 * * *")).await;
    assert_eq!(status, 200);
    assert!(fragment.contains(r#"id="err-cron_expression" aria-live="polite" hx-swap-oob="true"></p>"#), "{fragment}");
    assert!(fragment.contains("Next 5 fires in Europe/Berlin"), "{fragment}");
    assert_eq!(fragment.matches("02:00:00+0").count(), 5, "{fragment}");

    app.create_task(json!({"name": "taken"})).await;
    let (_, _, fragment) = browser.post("/ui/tasks/check", &form("taken", "")).await;
    assert!(fragment.contains("task `taken` already exists"), "{fragment}");

    app.stop().await;
}

#[tokio::test]
async fn pause_and_resume_go_back_to_a_local_page_only() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    let task = app.create_task(json!({"name": "pausable", "cron_expression": "@hourly"})).await;
    let id = task["id"].as_str().expect("an id");

    let (status, location, _) =
        browser.post(&format!("/ui/tasks/{id}/pause"), &[("next", "/ui/tasks?name=paus")]).await;
    assert_eq!((status, location.as_str()), (303, "/ui/tasks?name=paus"));
    let (_, task) = app.get("/api/v1/tasks/pausable").await;
    assert_eq!(task["enabled"], false);
    let (_, page) = browser.get("/ui/tasks?name=paus").await;
    assert!(page.contains(&format!(r#"action="/ui/tasks/{id}/resume""#)), "{page}");

    let (status, location, _) =
        browser.post(&format!("/ui/tasks/{id}/resume"), &[("next", "//elsewhere.example/")]).await;
    assert_eq!((status, location), (303, format!("/ui/tasks/{id}")));
    let (_, task) = app.get("/api/v1/tasks/pausable").await;
    assert_eq!(task["enabled"], true);
    app.stop().await;
}

#[tokio::test]
async fn delete_asks_first_and_refuses_open_executions_without_force() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    // No executor runs it: the triggered execution waits an hour for its retry, still open.
    let task = app
        .create_task(
            json!({"name": "doomed", "max_retry": 3, "retry_backoff": {"type": "fixed", "delay_seconds": 3600}}),
        )
        .await;
    let id = task["id"].as_str().expect("an id");
    let (code, _) = app.post("/api/v1/tasks/doomed/trigger", Value::Null).await;
    assert_eq!(code, 202);

    let (status, page) = browser.get(&format!("/ui/tasks/{id}/delete")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Delete doomed?") && page.contains(r#"name="force""#), "{page}");
    let (status, _, page) = browser.post(&format!("/ui/tasks/{id}/delete"), &[]).await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("Not deleted: the task has 1 pending or running execution.") && page.contains(r#"name="force""#),
        "{page}"
    );
    let (code, _) = app.get("/api/v1/tasks/doomed").await;
    assert_eq!(code, 200);

    let (status, location, _) = browser.post(&format!("/ui/tasks/{id}/delete"), &[("force", "true")]).await;
    assert_eq!((status, location.as_str()), (303, "/ui/tasks?deleted=doomed"));
    let (code, _) = app.get("/api/v1/tasks/doomed").await;
    assert_eq!(code, 404);
    let (_, page) = browser.get(&location).await;
    assert!(page.contains("was deleted"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_csrf_field_is_refused() {
    let app = spawn_app().await;
    let browser = Console::open(&app).await;
    app.create_task(json!({"name": "guarded"})).await;
    let response = no_redirects()
        .post(app.url("/ui/tasks/guarded/pause"))
        .header("cookie", format!("jobs_csrf={}", browser.csrf))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("next=%2Fui%2Ftasks")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 403);
    let (_, task) = app.get("/api/v1/tasks/guarded").await;
    assert_eq!(task["enabled"], true);
    app.stop().await;
}
