//! A fake scheduler that records every call, and helpers to start executors and wait for events.

use std::collections::{HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use jobs_executor::{
    ExecutionId, Executor, ExecutorBuilder, ExecutorHandle, ExecutorId, Parameters, TaskId, Timestamp,
};
use jobs_model::protocol::{
    AppendLogsRequest, CallbackRequest, DispatchRequest, HeartbeatRequest, RegisterRequest, RegisterResponse,
};

/// One call the fake scheduler received.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Register(RegisterRequest, ExecutorId),
    /// A heartbeat and whether the id was known (200) or not (404).
    Heartbeat(ExecutorId, HeartbeatRequest, bool),
    Callback(ExecutionId, CallbackRequest),
    Logs(ExecutionId, Vec<String>),
    Deregister(ExecutorId),
}

/// One request as it arrived, with the headers that carry credentials.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) timestamp: Option<String>,
    pub(crate) signature: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Recorded {
    events: Vec<Event>,
    requests: Vec<RawRequest>,
    /// (name, instance_id) → id, like the real registry's idempotent registration.
    ids: HashMap<(String, String), ExecutorId>,
    known: HashSet<ExecutorId>,
    /// Callbacks still to answer 503 with `Retry-After: 1`, as a scheduler shedding load does.
    shed_callbacks: u32,
    /// When each callback request arrived, refused or not.
    callback_arrivals: Vec<(ExecutionId, Instant)>,
}

type Shared = Arc<Mutex<Recorded>>;

pub(crate) struct FakeScheduler {
    pub(crate) url: String,
    recorded: Shared,
    server: JoinHandle<()>,
}

impl FakeScheduler {
    pub(crate) async fn start() -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    pub(crate) async fn start_on(port: u16) -> Self {
        Self::serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap())
    }

    fn serve(listener: TcpListener) -> Self {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let recorded = Shared::default();
        let router = Router::new()
            .route("/api/v1/executors/register", post(register))
            .route("/api/v1/executors/{id}/heartbeat", post(heartbeat))
            .route("/api/v1/executors/{id}", delete(deregister))
            .route("/api/v1/executions/{id}/callback", post(callback))
            .route("/api/v1/executions/{id}/logs", post(logs))
            .layer(middleware::from_fn_with_state(recorded.clone(), record_request))
            .with_state(recorded.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).into_future().await.unwrap();
        });
        Self { url, recorded, server }
    }

    /// Every request received, as it arrived.
    pub(crate) fn requests(&self) -> Vec<RawRequest> {
        self.recorded.lock().unwrap().requests.clone()
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.recorded.lock().unwrap().events.clone()
    }

    /// Answers the next `count` callbacks 503 with `Retry-After: 1`.
    pub(crate) fn shed_callbacks(&self, count: u32) {
        self.recorded.lock().unwrap().shed_callbacks = count;
    }

    /// When the callback requests of `execution_id` arrived, refused ones included.
    pub(crate) fn callback_arrivals(&self, execution_id: ExecutionId) -> Vec<Instant> {
        let recorded = self.recorded.lock().unwrap();
        recorded.callback_arrivals.iter().filter(|(id, _)| *id == execution_id).map(|(_, at)| *at).collect()
    }

    /// Forgets every executor, as after a database reset: heartbeats get 404.
    pub(crate) fn forget_executors(&self) {
        let mut recorded = self.recorded.lock().unwrap();
        recorded.ids.clear();
        recorded.known.clear();
    }

    pub(crate) fn registrations(&self) -> Vec<(RegisterRequest, ExecutorId)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Register(request, id) => Some((request, id)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn heartbeats(&self) -> Vec<(ExecutorId, HeartbeatRequest, bool)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Heartbeat(id, request, known) => Some((id, request, known)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn callbacks_for(&self, execution_id: ExecutionId) -> Vec<CallbackRequest> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Callback(id, request) if id == execution_id => Some(request),
                _ => None,
            })
            .collect()
    }

    /// Every line of an execution, streamed or sent with its callback, in order.
    pub(crate) fn log_lines_for(&self, execution_id: ExecutionId) -> Vec<String> {
        self.events()
            .into_iter()
            .flat_map(|event| match event {
                Event::Logs(id, lines) if id == execution_id => lines,
                Event::Callback(id, request) if id == execution_id => request.logs,
                _ => Vec::new(),
            })
            .collect()
    }

    pub(crate) fn deregistrations(&self) -> Vec<ExecutorId> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Deregister(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn callback_url(&self, execution_id: ExecutionId) -> String {
        format!("{}/api/v1/executions/{execution_id}/callback", self.url)
    }

    /// Waits for the one callback of `execution_id`.
    pub(crate) async fn callback(&self, execution_id: ExecutionId) -> CallbackRequest {
        wait_for("the callback", || self.callbacks_for(execution_id).pop()).await
    }
}

impl Drop for FakeScheduler {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record_request(State(recorded): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let header = |name: &str| parts.headers.get(name).map(|value| value.to_str().unwrap().to_owned());
    recorded.lock().unwrap().requests.push(RawRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        timestamp: header("x-jobs-timestamp"),
        signature: header("x-jobs-signature"),
        authorization: header("authorization"),
        body: body.to_vec(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn register(State(recorded): State<Shared>, Json(request): Json<RegisterRequest>) -> Json<RegisterResponse> {
    let mut recorded = recorded.lock().unwrap();
    let key = (request.name.clone(), request.instance_id.clone());
    let executor_id = *recorded.ids.entry(key).or_default();
    recorded.known.insert(executor_id);
    recorded.events.push(Event::Register(request, executor_id));
    Json(RegisterResponse {
        executor_id,
        heartbeat_interval_seconds: 1,
        created_tasks: Vec::new(),
        existing_tasks: Vec::new(),
    })
}

async fn heartbeat(
    State(recorded): State<Shared>,
    Path(id): Path<ExecutorId>,
    Json(request): Json<HeartbeatRequest>,
) -> (StatusCode, Json<Value>) {
    let mut recorded = recorded.lock().unwrap();
    let known = recorded.known.contains(&id);
    recorded.events.push(Event::Heartbeat(id, request, known));
    if known {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "not_found", "message": format!("executor {id}")}})))
    }
}

async fn deregister(State(recorded): State<Shared>, Path(id): Path<ExecutorId>) -> StatusCode {
    let mut recorded = recorded.lock().unwrap();
    recorded.known.remove(&id);
    recorded.events.push(Event::Deregister(id));
    StatusCode::NO_CONTENT
}

async fn callback(
    State(recorded): State<Shared>,
    Path(id): Path<ExecutionId>,
    Json(request): Json<CallbackRequest>,
) -> Response {
    let mut recorded = recorded.lock().unwrap();
    recorded.callback_arrivals.push((id, Instant::now()));
    if recorded.shed_callbacks > 0 {
        recorded.shed_callbacks -= 1;
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("retry-after", "1")
            .body(Body::from(r#"{"error":{"code":"unavailable","message":"shedding"}}"#))
            .unwrap();
    }
    recorded.events.push(Event::Callback(id, request));
    Response::new(Body::from(r#"{"status":"ok"}"#))
}

async fn logs(
    State(recorded): State<Shared>,
    Path(id): Path<ExecutionId>,
    Json(request): Json<AppendLogsRequest>,
) -> Json<Value> {
    recorded.lock().unwrap().events.push(Event::Logs(id, request.lines));
    Json(json!({"status": "ok"}))
}

/// An executor of the group `test-group`, instance `it-1`, talking to `scheduler_urls`.
pub(crate) fn executor<I: IntoIterator<Item = String>>(scheduler_urls: I) -> ExecutorBuilder {
    Executor::builder("test-group").instance_id("it-1").scheduler_urls(scheduler_urls)
}

/// Starts `builder` on 127.0.0.1 port 0.
pub(crate) async fn start(builder: ExecutorBuilder) -> ExecutorHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    builder.build().unwrap().start(listener).await.unwrap()
}

/// A port nothing listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn dispatch_request(fake: &FakeScheduler, task_name: &str, parameters: Value) -> DispatchRequest {
    let execution_id = ExecutionId::new();
    let parameters: Parameters = serde_json::from_value(parameters).unwrap();
    DispatchRequest {
        execution_id,
        task_id: TaskId::new(),
        task_name: task_name.to_owned(),
        parameters,
        attempt: 1,
        scheduled_at: Timestamp::now(),
        timeout_seconds: 60,
        callback_url: fake.callback_url(execution_id),
        shard: None,
    }
}

/// `POST {executor}/{path}` with `body`; the status and the JSON answer.
pub(crate) async fn post_json(handle: &ExecutorHandle, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
    let response = reqwest::Client::new().post(format!("{}{path}", handle.base_url())).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn execute(handle: &ExecutorHandle, request: &DispatchRequest) -> (u16, Value) {
    post_json(handle, "/execute", request).await
}

/// Polls `probe` until it returns `Some`, failing after a deadline.
pub(crate) async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    eventually(what, || std::future::ready(probe())).await
}

/// Polls the async `probe` until it returns `Some`, failing after a deadline.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
