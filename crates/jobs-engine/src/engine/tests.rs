//! The engine on a real (SQLite) database: what a follower keeps while it serves requests.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use jobs_balance::Manager;
use jobs_election::{Lease, Role};
use jobs_model::protocol::DispatchRequest;
use jobs_model::{ExecutionId, Parameters, TaskSpec};
use jobs_registry::Registry;

use crate::{DispatchError, Engine, EngineParts, ExecutorClient, SystemClock, TaskPatch};

#[derive(Debug)]
struct NoExecutors;

#[async_trait]
impl ExecutorClient for NoExecutors {
    async fn execute(&self, _: &str, _: &DispatchRequest) -> Result<(), DispatchError> {
        Err(DispatchError::Unreachable("no executors in this test".to_owned()))
    }

    async fn cancel(&self, _: &str, _: ExecutionId) -> Result<(), DispatchError> {
        Err(DispatchError::Unreachable("no executors in this test".to_owned()))
    }
}

/// A follower engine, and the sender that could make it lead.
async fn follower() -> (Arc<Engine>, watch::Sender<Role>) {
    let store = jobs_storage::testing::test_store().await;
    let (role, receiver) = watch::channel(Role::Follower);
    let engine = Engine::new(EngineParts {
        registry: Arc::new(Registry::new(store.clone(), Default::default())),
        store,
        strategies: Arc::new(Manager::default()),
        client: Arc::new(NoExecutors),
        config: Default::default(),
        instance_id: "follower".to_owned(),
        lock_key: "engine-test".to_owned(),
        advertised_url: "http://127.0.0.1:1".to_owned(),
        role: receiver,
        lease: Lease::default(),
        health_check: Default::default(),
        retention: Default::default(),
        alerts: Default::default(),
        executor_secret: None,
        clock: Arc::new(SystemClock),
        tls: None,
    });
    (engine, role)
}

/// Changes and triggers through a follower used to queue one event each for a planner that only a leader runs.
#[tokio::test]
async fn a_follower_buffers_nothing_however_many_changes_it_serves() {
    let (engine, _role) = follower().await;
    let mut spec = TaskSpec::named("patched".to_owned());
    spec.cron_expression = Some("0 0 3 * * *".to_owned());
    engine.create_task(spec).await.unwrap();
    for n in 0..5_000u32 {
        let patch = TaskPatch { description: Some(format!("change {n}")), ..TaskPatch::default() };
        engine.patch_task("patched", patch).await.unwrap();
        if n % 10 == 0 {
            engine.trigger("patched", &Parameters::default()).await.unwrap();
        }
    }
    assert_eq!(engine.waiting_hints(), 0, "a follower holds nothing for the leader's loops");
}
