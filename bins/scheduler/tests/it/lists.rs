//! Lists and deletion: cursor pages stay consistent while executions are inserted; a busy task is not
//! deleted by accident.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::fake_executor::FakeExecutor;
use crate::support::{spawn_app, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_consistent_while_executions_are_inserted() {
    let app = spawn_app().await;
    app.create_task(json!({"name": "paged"})).await;
    let mut before = HashSet::new();
    for _ in 0..30 {
        let (_, triggered) = app.post("/api/v1/tasks/paged/trigger", json!({})).await;
        before.insert(triggered["execution_id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // New executions arrive between pages; they are newer than the cursor and never shift a page.
        app.post("/api/v1/tasks/paged/trigger", json!({})).await;
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/executions?task_id=paged&limit=7&cursor={cursor}"),
            None => "/api/v1/executions?task_id=paged&limit=7".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().into_iter().flatten() {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no execution on two pages");
    assert!(seen.windows(2).all(|pair| pair[0] > pair[1]), "newest first, strictly");
    assert!(before.iter().all(|id| unique.contains(id)), "every execution that existed is listed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_running_executions_is_deleted_only_with_force() {
    let app = spawn_app().await;
    let fake = FakeExecutor::start().await;
    fake.register(&app, "d-1", &["busy"]).await;
    app.create_task(json!({"name": "busy"})).await;
    let (_, triggered) = app.post("/api/v1/tasks/busy/trigger", json!({})).await;
    let id = triggered["execution_id"].as_str().expect("id").to_owned();
    wait_for("the execution to run", Duration::from_secs(10), || async {
        (app.get(&format!("/api/v1/executions/{id}")).await.1["status"] == "running").then_some(())
    })
    .await;
    let response = app.client.delete(app.url("/api/v1/tasks/busy")).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 409);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("force=true")), "{body}");

    let response = app.client.delete(app.url("/api/v1/tasks/busy?force=true")).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 204);
    let (status, _) = app.get("/api/v1/tasks/busy").await;
    assert_eq!(status, 404);
    let (_, execution) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(execution["status"], "cancelled", "history stays, cancelled");
    wait_for("the executor to be told", Duration::from_secs(10), || async {
        fake.cancelled().iter().any(|c| c["execution_id"] == id.as_str()).then_some(())
    })
    .await;
    app.stop().await;
}
