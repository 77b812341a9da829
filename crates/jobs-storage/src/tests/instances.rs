//! Scheduler instances and the leader epoch.

use crate::tests::{T0, at};
use crate::{LeaderRecord, SchedulerInstance, Store};

fn instance(id: &str, role: &str, seen: i64) -> SchedulerInstance {
    SchedulerInstance {
        instance_id: id.to_owned(),
        address: format!("http://{id}:8080"),
        role: role.to_owned(),
        started_at: T0,
        last_seen_at: at(seen),
    }
}

pub(crate) async fn instances_upsert_list_delete(store: &Store) {
    assert!(store.list_instances().await.unwrap().is_empty());
    store.upsert_instance(&instance("s2", "follower", 1)).await.unwrap();
    store.upsert_instance(&instance("s1", "follower", 1)).await.unwrap();
    store.upsert_instance(&instance("s1", "leader", 2)).await.unwrap();
    assert_eq!(store.list_instances().await.unwrap(), [instance("s1", "leader", 2), instance("s2", "follower", 1)]);
    store.delete_instance("s2").await.unwrap();
    store.delete_instance("unknown").await.unwrap();
    assert_eq!(store.list_instances().await.unwrap(), [instance("s1", "leader", 2)]);
}

pub(crate) async fn bump_epoch_increments(store: &Store) {
    assert_eq!(store.leader("jobs_leader").await.unwrap(), None);
    assert_eq!(store.bump_epoch("jobs_leader", "s1", T0).await.unwrap(), 1);
    assert_eq!(store.bump_epoch("jobs_leader", "s2", at(10)).await.unwrap(), 2);
    assert_eq!(store.bump_epoch("other", "s3", at(20)).await.unwrap(), 1);
    assert_eq!(
        store.leader("jobs_leader").await.unwrap(),
        Some(LeaderRecord { instance_id: "s2".to_owned(), epoch: 2, acquired_at: at(10), session_tag: None })
    );

    // Concurrent bumps never hand out the same epoch twice.
    let bumps = (0..4).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.bump_epoch("race", &format!("s{n}"), T0).await.unwrap() })
    });
    let mut epochs = Vec::new();
    for bump in bumps {
        epochs.push(bump.await.unwrap());
    }
    epochs.sort_unstable();
    assert_eq!(epochs, [1, 2, 3, 4]);
}
