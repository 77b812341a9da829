//! One leader at a time; handover when the leader shuts down, and when its lock session is killed.

use std::time::Duration;

use tokio::time::Instant;

use jobs_storage::Backend;
use jobs_storage::testing::test_store_for;

use crate::on_servers;
use crate::support::{HEARTBEAT, Node, kill_lock_session, leader_and_follower, lock_key, wait_until};

on_servers!(one_leads_and_shutdown_hands_over, a_killed_lock_session_hands_over);

async fn one_leads_and_shutdown_hands_over(backend: Backend) {
    let Some(db) = test_store_for(backend).await else {
        return;
    };
    let key = lock_key(&db);
    let (leader, follower) = leader_and_follower(Node::start(&db, "a", &key), Node::start(&db, "b", &key)).await;
    let epoch = leader.role().epoch().unwrap();
    assert!(leader.lease.is_valid());
    assert!(!follower.lease.is_valid());
    let record = db.store().leader(&key).await.unwrap().unwrap();
    assert_eq!((record.instance_id.as_str(), record.epoch), (leader.id.as_str(), epoch));

    // Over two heartbeats (two checks by the leader, two attempts by the follower) the follower never leads.
    let mut follower_role = follower.role_receiver();
    let usurped = tokio::time::timeout(2 * HEARTBEAT, follower_role.wait_for(|role| role.is_leader())).await;
    assert!(usurped.is_err(), "the follower led while the leader held the lock");
    assert!(leader.role().is_leader());
    assert!(leader.lease.is_valid(), "a leader's lease lapsed between good checks");

    // Shutdown releases the lock: the follower, blocked on it, takes over at once.
    let stopping = Instant::now();
    leader.stop().await;
    wait_until("the follower leads", stopping, stopping + HEARTBEAT, || follower.role().is_leader()).await;
    let new_epoch = follower.role().epoch().unwrap();
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    assert!(follower.lease.is_valid());
    let record = db.store().leader(&key).await.unwrap().unwrap();
    assert_eq!((record.instance_id.as_str(), record.epoch), (follower.id.as_str(), new_epoch));

    follower.stop().await;
    db.drop().await;
}

async fn a_killed_lock_session_hands_over(backend: Backend) {
    let Some(db) = test_store_for(backend).await else {
        return;
    };
    let key = lock_key(&db);
    let (leader, follower) = leader_and_follower(Node::start(&db, "a", &key), Node::start(&db, "b", &key)).await;
    let epoch = leader.role().epoch().unwrap();

    let killed_at = Instant::now();
    assert_eq!(kill_lock_session(&db, &key).await, 1, "no session held the lock");
    // The follower, blocked on the lock, gets it as soon as the server frees it.
    let deadline = killed_at + HEARTBEAT;
    wait_until("the follower leads", killed_at, deadline, || follower.role().is_leader()).await;
    // The deposed leader notices at its next check, at most a heartbeat away (plus a query timeout).
    let deadline = killed_at + 2 * HEARTBEAT + Duration::from_millis(500);
    wait_until("the deposed leader steps down", killed_at, deadline, || {
        !leader.role().is_leader() && !leader.lease.is_valid()
    })
    .await;
    let new_epoch = follower.role().epoch().unwrap();
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    let record = db.store().leader(&key).await.unwrap().unwrap();
    assert_eq!((record.instance_id.as_str(), record.epoch), (follower.id.as_str(), new_epoch));

    // The deposed leader campaigns again on a fresh connection and takes over when the new leader goes.
    let stopping = Instant::now();
    follower.stop().await;
    let deadline = stopping + 2 * HEARTBEAT + Duration::from_secs(1);
    wait_until("the deposed leader leads again", stopping, deadline, || leader.role().is_leader()).await;
    assert!(leader.role().epoch().unwrap() > new_epoch);
    assert!(leader.lease.is_valid());

    leader.stop().await;
    db.drop().await;
}
