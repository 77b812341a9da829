//! What the engine's tests share: an engine on a fresh SQLite database, leading or following, with an executor
//! client that takes every request and remembers it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::watch;

use jobs_balance::Manager;
use jobs_election::{Lease, Role};
use jobs_model::ExecutionId;
use jobs_model::protocol::{DispatchRequest, RegisterRequest};
use jobs_registry::Registry;

use crate::{DispatchError, Engine, EngineParts, ExecutorClient, SystemClock};

/// An executor client that takes every request and remembers it.
#[derive(Debug, Default)]
pub(crate) struct Taking(pub(crate) Mutex<Vec<(ExecutionId, u32)>>);

#[async_trait]
impl ExecutorClient for Taking {
    async fn execute(&self, _: &str, request: &DispatchRequest) -> Result<(), DispatchError> {
        self.0.lock().unwrap().push((request.execution_id, request.attempt));
        Ok(())
    }

    async fn cancel(&self, _: &str, _: ExecutionId) -> Result<(), DispatchError> {
        Ok(())
    }
}

/// An engine on a fresh SQLite database in `role`, sending through `client`, and the sender of its role.
pub(crate) async fn engine(client: Arc<Taking>, role: Role) -> (Arc<Engine>, watch::Sender<Role>) {
    let store = jobs_storage::testing::test_store().await;
    let (sender, receiver) = watch::channel(role);
    let lease = Lease::default();
    if role.is_leader() {
        lease.hold();
    }
    let engine = Engine::new(EngineParts {
        registry: Arc::new(Registry::new(store.clone(), Default::default())),
        store,
        strategies: Arc::new(Manager::default()),
        client,
        config: Default::default(),
        instance_id: "test".to_owned(),
        lock_key: "engine-test".to_owned(),
        advertised_url: "http://127.0.0.1:1".to_owned(),
        role: receiver,
        lease,
        health_check: Default::default(),
        retention: Default::default(),
        alerts: Default::default(),
        executor_secret: None,
        clock: Arc::new(SystemClock),
        tls: None,
    });
    (engine, sender)
}

/// A leading engine (epoch 1).
pub(crate) async fn leader(client: Arc<Taking>) -> Arc<Engine> {
    engine(client, Role::Leader { epoch: 1 }).await.0
}

/// Registers instance `instance` of group `plain`, declaring `task`.
pub(crate) async fn register(engine: &Engine, instance: &str, task: &str) -> jobs_model::ExecutorId {
    register_with(engine, instance, task, serde_json::json!({})).await
}

pub(crate) async fn register_with(
    engine: &Engine,
    instance: &str,
    task: &str,
    extra: serde_json::Value,
) -> jobs_model::ExecutorId {
    let mut body = serde_json::json!({
        "name": "plain", "instance_id": instance, "base_url": "http://127.0.0.1:2", "tasks": [{"task_name": task}]
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let registration: RegisterRequest = serde_json::from_value(body).unwrap();
    engine.register_executor(&registration).await.unwrap().0.executor_id
}
