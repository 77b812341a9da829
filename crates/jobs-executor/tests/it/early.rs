//! Early delivery: fires held until their instant, dropped by a cancel or a shutdown, and delivered twice but run once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use jobs_executor::{ExecutionId, ExecutorBuilder, ExecutorHandle, JobContext, JobError, Timestamp};
use jobs_model::protocol::{CallbackStatus, DispatchRequest, RegisterRequest};

use crate::support::{FakeScheduler, dispatch_request, eventually, execute, executor, post_json, start, wait_for};

/// How far ahead the tests schedule a fire that should be held for a moment.
const LEAD_MS: i64 = 1500;

/// The handlers' starts, by this process's clock; each handler waits for a permit of `gate`, then returns its
/// context's attempt and `scheduled_at`.
#[derive(Clone)]
struct Recorder {
    starts: Arc<Mutex<Vec<(ExecutionId, u32, Timestamp)>>>,
    gate: Arc<Semaphore>,
}

impl Recorder {
    /// Handlers that run through at once.
    fn open() -> Self {
        Self { starts: Arc::default(), gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)) }
    }

    /// Handlers that block until [`release`](Self::release).
    fn gated() -> Self {
        Self { starts: Arc::default(), gate: Arc::new(Semaphore::new(0)) }
    }

    fn release(&self, handlers: usize) {
        self.gate.add_permits(handlers);
    }

    fn add_to(&self, builder: ExecutorBuilder) -> ExecutorBuilder {
        let recorder = self.clone();
        builder.handler("record", move |ctx: JobContext| {
            let recorder = recorder.clone();
            async move {
                recorder.starts.lock().unwrap().push((ctx.execution_id(), ctx.attempt(), Timestamp::now()));
                let _permit = recorder.gate.acquire().await.map_err(JobError::from)?;
                Ok(json!({"attempt": ctx.attempt(), "scheduled_at": ctx.scheduled_at()}))
            }
        })
    }

    /// The starts of `execution_id`: (attempt, when).
    fn starts_of(&self, execution_id: ExecutionId) -> Vec<(u32, Timestamp)> {
        let starts = self.starts.lock().unwrap();
        starts.iter().filter(|(id, _, _)| *id == execution_id).map(|&(_, attempt, at)| (attempt, at)).collect()
    }
}

async fn started(builder: ExecutorBuilder) -> ExecutorHandle {
    let handle = start(builder).await;
    handle.registered().await;
    handle
}

/// A dispatch of the `record` task due `lead_ms` from now.
fn due_in(fake: &FakeScheduler, lead_ms: i64) -> DispatchRequest {
    let mut request = dispatch_request(fake, "record", json!({}));
    request.scheduled_at = Timestamp::now().add_millis(lead_ms);
    request
}

fn accepted() -> (u16, Value) {
    (202, json!({"status": "accepted"}))
}

fn duplicate() -> (u16, Value) {
    (202, json!({"status": "duplicate"}))
}

#[tokio::test]
async fn an_early_fire_is_accepted_at_once_and_its_handler_starts_at_its_instant() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()]))).await;
    let request = due_in(&fake, LEAD_MS);

    assert_eq!(execute(&handle, &request).await, accepted());
    let callback = fake.callback(request.execution_id).await;
    assert_eq!(callback.status, CallbackStatus::Success);
    assert_eq!(callback.result, Some(json!({"attempt": 1, "scheduled_at": request.scheduled_at})));
    let starts = recorder.starts_of(request.execution_id);
    assert_eq!(starts.len(), 1, "{starts:?}");
    let (_, started_at) = starts[0];
    assert!(started_at >= request.scheduled_at, "started at {started_at}, before {}", request.scheduled_at);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_early_delivery_off_a_handler_starts_when_its_fire_arrives() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()])).early_delivery(Duration::ZERO)).await;
    let request = due_in(&fake, 60_000);

    assert_eq!(execute(&handle, &request).await, accepted());
    assert_eq!(fake.callback(request.execution_id).await.status, CallbackStatus::Success);
    let (_, started_at) = recorder.starts_of(request.execution_id)[0];
    assert!(started_at < request.scheduled_at, "started at {started_at}, held until {}", request.scheduled_at);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_held_fire_takes_its_slot_and_a_cancel_before_its_instant_drops_it() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()])).max_concurrency(1)).await;
    let dropped = due_in(&fake, LEAD_MS);
    let mut next = dispatch_request(&fake, "record", json!({}));
    // Due after the dropped fire: when it has reported, the dropped fire's instant has passed.
    next.scheduled_at = dropped.scheduled_at.add_millis(200);

    assert_eq!(execute(&handle, &dropped).await, accepted());
    let (status, body) = execute(&handle, &next).await;
    assert_eq!((status, &body["error"]["code"]), (429, &json!("busy")), "{body}");

    let cancel = json!({"execution_id": dropped.execution_id});
    assert_eq!(post_json(&handle, "/cancel", &cancel).await, (200, json!({"status": "cancelled"})));
    // The slot frees once the dropped fire has left.
    let answer = eventually("the slot of the cancelled fire", || async {
        let answer = execute(&handle, &next).await;
        (answer.0 != 429).then_some(answer)
    })
    .await;
    assert_eq!(answer, accepted());
    // The scheduler ended the cancelled execution: delivered again, it is not taken again.
    assert_eq!(execute(&handle, &dropped).await, duplicate());

    assert_eq!(fake.callback(next.execution_id).await.status, CallbackStatus::Success);
    assert_eq!(recorder.starts_of(dropped.execution_id), []);
    assert!(fake.callbacks_for(dropped.execution_id).is_empty());
    handle.shutdown().await.unwrap();
    assert!(fake.callbacks_for(dropped.execution_id).is_empty(), "a callback after shutdown");
}

#[tokio::test]
async fn a_fire_delivered_again_runs_once_and_a_later_attempt_runs() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::gated();
    let handle = started(recorder.add_to(executor([fake.url.clone()]))).await;
    let mut request = due_in(&fake, LEAD_MS);
    let id = request.execution_id;

    assert_eq!(execute(&handle, &request).await, accepted());
    assert_eq!(execute(&handle, &request).await, duplicate(), "while held");
    wait_for("the handler to start", || (!recorder.starts_of(id).is_empty()).then_some(())).await;
    assert_eq!(execute(&handle, &request).await, duplicate(), "while running");
    recorder.release(1);
    assert_eq!(fake.callback(id).await.status, CallbackStatus::Success);
    assert_eq!(execute(&handle, &request).await, duplicate(), "once finished");
    assert_eq!(recorder.starts_of(id).len(), 1);

    // A retry is another attempt of the same execution: it runs; the earlier attempt stays ignored.
    request.attempt = 2;
    request.scheduled_at = Timestamp::now();
    assert_eq!(execute(&handle, &request).await, accepted());
    wait_for("the second attempt to start", || (recorder.starts_of(id).len() == 2).then_some(())).await;
    request.attempt = 1;
    assert_eq!(execute(&handle, &request).await, duplicate(), "an earlier attempt");
    recorder.release(1);
    let second = wait_for("the second attempt's callback", || {
        fake.callbacks_for(id).into_iter().find(|callback| callback.attempt == Some(2))
    })
    .await;
    assert_eq!(second.status, CallbackStatus::Success);
    let attempts: Vec<u32> = recorder.starts_of(id).into_iter().map(|(attempt, _)| attempt).collect();
    assert_eq!(attempts, [1, 2]);
    assert_eq!(fake.callbacks_for(id).len(), 2);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_later_attempt_takes_the_place_of_a_held_one() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()])).max_concurrency(1)).await;
    let first = due_in(&fake, LEAD_MS);
    let mut retry = first.clone();
    retry.attempt = 2;
    // Due after the first attempt: when it has reported, the first attempt's instant has passed.
    retry.scheduled_at = first.scheduled_at.add_millis(200);

    assert_eq!(execute(&handle, &first).await, accepted());
    assert_eq!(execute(&handle, &retry).await, accepted(), "the retry reuses the held attempt's slot");
    let callback = fake.callback(first.execution_id).await;
    assert_eq!((callback.status, callback.attempt), (CallbackStatus::Success, Some(2)));
    let attempts: Vec<u32> = recorder.starts_of(first.execution_id).into_iter().map(|(attempt, _)| attempt).collect();
    assert_eq!(attempts, [2]);
    assert_eq!(fake.callbacks_for(first.execution_id).len(), 1);
    handle.shutdown().await.unwrap();
}

/// The registration bodies `fake` received, as JSON.
fn registration_bodies(fake: &FakeScheduler) -> Vec<Value> {
    let requests = fake.requests();
    let registrations = requests.iter().filter(|request| request.path == "/api/v1/executors/register");
    registrations.map(|request| serde_json::from_slice(&request.body).unwrap()).collect()
}

#[tokio::test]
async fn the_registration_asks_for_early_delivery_unless_it_is_turned_off() {
    let fake = FakeScheduler::start().await;
    let handle = started(Recorder::open().add_to(executor([fake.url.clone()]))).await;
    let bodies = registration_bodies(&fake);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["early_delivery_ms"], json!(1000), "{}", bodies[0]);
    let request: RegisterRequest = serde_json::from_value(bodies[0].clone()).unwrap();
    assert_eq!(request.early_delivery_ms, Some(1000));
    handle.shutdown().await.unwrap();

    let fake = FakeScheduler::start().await;
    let builder = Recorder::open().add_to(executor([fake.url.clone()])).early_delivery(Duration::ZERO);
    let handle = started(builder).await;
    let bodies = registration_bodies(&fake);
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].get("early_delivery_ms").is_none(), "{}", bodies[0]);
    assert!(bodies[0].get("name").is_some(), "{}", bodies[0]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn held_fires_are_in_the_heartbeats_and_dropped_at_shutdown() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()])).early_delivery(Duration::from_secs(60))).await;
    let executor_id = handle.executor_id();
    let request = due_in(&fake, 60_000);
    let id = request.execution_id;
    assert_eq!(execute(&handle, &request).await, accepted());

    let (_, heartbeat, _) = wait_for("a heartbeat listing the held fire", || {
        fake.heartbeats().into_iter().find(|(_, heartbeat, _)| heartbeat.running_executions.contains(&id))
    })
    .await;
    assert!(heartbeat.load.is_some_and(|load| load > 0.0), "{heartbeat:?}");
    assert_eq!(recorder.starts_of(id), [], "started before its instant");

    handle.shutdown().await.unwrap();
    let callbacks = fake.callbacks_for(id);
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0].status, CallbackStatus::Failed);
    assert_eq!(
        callbacks[0].error.as_deref(),
        Some("not started: the executor instance shut down before the scheduled time")
    );
    assert_eq!(recorder.starts_of(id), []);
    assert_eq!(fake.deregistrations(), executor_id.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_fire_due_in_the_far_future_is_held_and_a_malformed_instant_refused() {
    let fake = FakeScheduler::start().await;
    let recorder = Recorder::open();
    let handle = started(recorder.add_to(executor([fake.url.clone()]))).await;
    let mut request = dispatch_request(&fake, "record", json!({}));
    request.scheduled_at = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();

    assert_eq!(execute(&handle, &request).await, accepted());
    let cancel = json!({"execution_id": request.execution_id});
    assert_eq!(post_json(&handle, "/cancel", &cancel).await, (200, json!({"status": "cancelled"})));

    let mut body = serde_json::to_value(dispatch_request(&fake, "record", json!({}))).unwrap();
    body["scheduled_at"] = json!("tomorrow");
    let (status, body) = post_json(&handle, "/execute", &body).await;
    assert_eq!((status, &body["error"]["code"]), (422, &json!("invalid_body")), "{body}");
    handle.shutdown().await.unwrap();
    assert_eq!(recorder.starts_of(request.execution_id), []);
    assert!(fake.callbacks_for(request.execution_id).is_empty());
}
