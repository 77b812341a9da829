//! A small executor written against the protocol alone, whose answers a test can switch.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Switches {
    healthy: AtomicBool,
    /// 0: accept with 202; otherwise answer /execute with this status.
    execute_status: AtomicU16,
    executed: Mutex<Vec<Value>>,
    cancelled: Mutex<Vec<Value>>,
}

/// A running fake executor.
#[derive(Clone)]
pub(crate) struct FakeExecutor {
    pub(crate) base_url: String,
    switches: Arc<Switches>,
}

impl FakeExecutor {
    pub(crate) async fn start() -> Self {
        let switches = Arc::new(Switches { healthy: AtomicBool::new(true), ..Switches::default() });
        let router = Router::new()
            .route("/health", get(health))
            .route("/execute", post(execute))
            .route("/cancel", post(cancel))
            .with_state(switches.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, switches }
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.switches.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Answers `/execute` with `status` from now on (0: accept).
    pub(crate) fn answer_execute_with(&self, status: u16) {
        self.switches.execute_status.store(status, Ordering::SeqCst);
    }

    /// The `/execute` bodies taken, each with `received_at` (unix milliseconds) added.
    pub(crate) fn executed(&self) -> Vec<Value> {
        self.switches.executed.lock().expect("executed").clone()
    }

    pub(crate) fn cancelled(&self) -> Vec<Value> {
        self.switches.cancelled.lock().expect("cancelled").clone()
    }

    /// Registers with the scheduler under `instance_id`, declaring `tasks`; returns the executor id.
    pub(crate) async fn register(&self, app: &crate::support::TestApp, instance_id: &str, tasks: &[&str]) -> String {
        self.register_with(app, instance_id, tasks, json!({})).await
    }

    /// [`FakeExecutor::register`] with `extra` fields in the registration (an object).
    pub(crate) async fn register_with(
        &self,
        app: &crate::support::TestApp,
        instance_id: &str,
        tasks: &[&str],
        extra: Value,
    ) -> String {
        let tasks: Vec<Value> = tasks.iter().map(|task| json!({"task_name": task})).collect();
        let mut registration =
            json!({"name": "fake", "instance_id": instance_id, "base_url": self.base_url, "tasks": tasks});
        if let (Some(registration), Some(extra)) = (registration.as_object_mut(), extra.as_object()) {
            registration.extend(extra.clone());
        }
        let (status, body) = app.post("/api/v1/executors/register", registration).await;
        assert!(status == 200 || status == 201, "{body}");
        body["executor_id"].as_str().expect("executor_id").to_owned()
    }
}

async fn health(State(switches): State<Arc<Switches>>) -> StatusCode {
    if switches.healthy.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn execute(State(switches): State<Arc<Switches>>, Json(body): Json<Value>) -> StatusCode {
    let status = switches.execute_status.load(Ordering::SeqCst);
    if status != 0 {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    let mut body = body;
    body["received_at"] = json!(jobs_model::Timestamp::now().as_millis());
    switches.executed.lock().expect("executed").push(body);
    StatusCode::ACCEPTED
}

async fn cancel(State(switches): State<Arc<Switches>>, Json(body): Json<Value>) -> StatusCode {
    switches.cancelled.lock().expect("cancelled").push(body);
    StatusCode::OK
}
