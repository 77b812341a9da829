//! The engine on a real (SQLite) database: what a follower keeps while it serves requests.

use std::sync::Arc;

use jobs_election::Role;
use jobs_model::{Parameters, TaskSpec};

use crate::{Engine, TaskPatch};

/// A follower engine, and the sender that could make it lead.
async fn follower() -> (Arc<Engine>, tokio::sync::watch::Sender<Role>) {
    crate::testing::engine(Arc::default(), Role::Follower).await
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
