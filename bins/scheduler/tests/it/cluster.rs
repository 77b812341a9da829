//! Several scheduler processes on one database behave as one scheduler: one leader, failover after `kill -9`,
//! no fire dispatched twice and no fire slot lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use jobs_executor::{Executor, JobContext, JobError};
use jobs_model::Timestamp;
use jobs_storage::Backend;

use crate::processes::ProcessCluster;
use crate::support::wait_for;

type Receipts = Arc<Mutex<Vec<Timestamp>>>;

/// An SDK executor for `tick` that records the slot of every execution it runs.
async fn recording_executor(cluster: &ProcessCluster, receipts: &Receipts) -> jobs_executor::ExecutorHandle {
    recording_executor_with(cluster, receipts, jobs_executor::DEFAULT_EARLY_DELIVERY).await
}

/// [`recording_executor`] with early delivery of `early_delivery` (zero: fires arrive at their instant).
async fn recording_executor_with(
    cluster: &ProcessCluster,
    receipts: &Receipts,
    early_delivery: Duration,
) -> jobs_executor::ExecutorHandle {
    let receipts = receipts.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("cluster")
        .instance_id("cluster-executor")
        .early_delivery(early_delivery)
        .scheduler_urls(cluster.addresses())
        .handler("tick", move |ctx: JobContext| {
            receipts.lock().expect("receipts").push(ctx.scheduled_at());
            async move { Ok::<_, JobError>(json!({})) }
        })
        .build()
        .expect("executor builds");
    let handle = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers");
    handle
}

fn received(receipts: &Receipts) -> Vec<Timestamp> {
    receipts.lock().expect("receipts").clone()
}

/// Whether every slot from the first received up to one at least `until` came, with no gap.
fn complete_until(slots: &[Timestamp], until: Timestamp) -> bool {
    let mut ordered = slots.to_vec();
    ordered.sort_unstable();
    ordered.dedup();
    let last = ordered.iter().position(|slot| *slot >= until);
    last.is_some_and(|last| ordered[..=last].windows(2).all(|pair| pair[1].millis_since(pair[0]) == 1000))
}

/// Every slot received once, and no gap between the first and the last.
#[track_caller]
fn assert_once_each_without_gaps(slots: &[Timestamp]) {
    let mut counts: BTreeMap<Timestamp, usize> = BTreeMap::new();
    for slot in slots {
        *counts.entry(*slot).or_default() += 1;
    }
    let duplicated: Vec<String> =
        counts.iter().filter(|(_, count)| **count > 1).map(|(slot, count)| format!("{slot} ×{count}")).collect();
    assert!(duplicated.is_empty(), "slots dispatched more than once: {duplicated:?}");
    let ordered: Vec<Timestamp> = counts.keys().copied().collect();
    let lost: Vec<String> = ordered
        .windows(2)
        .filter(|pair| pair[1].millis_since(pair[0]) != 1000)
        .map(|pair| format!("between {} and {}", pair[0], pair[1]))
        .collect();
    assert!(lost.is_empty(), "fire slots lost: {lost:?}");
}

/// Kills the leader while fires are claimed ahead of their instant (the planner always holds the next ones): those
/// the dead leader could not have sent go out from the new one, each exactly once, whether the executor takes
/// fires early (and so may be sent one twice, which it ignores) or only at their instant (and so the new leader
/// waits for its heartbeat to learn which it never received).
async fn leader_killed(backend: Backend, early_delivery: Duration) {
    let Some(mut cluster) = ProcessCluster::start(backend, 3).await else { return };
    cluster.wait_healthy().await;
    let leader = cluster.wait_leader(None).await;
    let receipts = Receipts::default();
    let executor = recording_executor_with(&cluster, &receipts, early_delivery).await;

    // Created through a follower: the leader's planner must pick it up.
    let follower = (leader + 1) % 3;
    let (status, task) =
        cluster.post(follower, "/api/v1/tasks", json!({"name": "tick", "cron_expression": "* * * * * *"})).await;
    assert_eq!(status, 201, "{task}");
    wait_for("three fires before the kill", Duration::from_secs(30), || async {
        (received(&receipts).len() >= 3).then_some(())
    })
    .await;

    cluster.kill(leader);
    let killed_at = Timestamp::now();
    let new_leader = cluster.wait_leader(Some(leader)).await;
    assert_ne!(new_leader, leader);
    // A fire whose delivery the new leader cannot know is settled by the executor's next heartbeat (a few seconds).
    wait_for("every fire up to three seconds past the kill", Duration::from_secs(60), || async {
        complete_until(&received(&receipts), killed_at.add_millis(3000)).then_some(())
    })
    .await;

    let (status, paused) = cluster.post(new_leader, "/api/v1/tasks/tick/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let slots = received(&receipts);
    assert!(slots.iter().any(|slot| *slot < killed_at) && slots.iter().any(|slot| *slot > killed_at));
    assert_once_each_without_gaps(&slots);

    executor.shutdown().await.expect("executor stops");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_on_mysql_loses_and_repeats_nothing() {
    leader_killed(Backend::MySql, jobs_executor::DEFAULT_EARLY_DELIVERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_on_mysql_without_early_delivery_loses_and_repeats_nothing() {
    leader_killed(Backend::MySql, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_on_postgres_loses_and_repeats_nothing() {
    leader_killed(Backend::Postgres, jobs_executor::DEFAULT_EARLY_DELIVERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_on_postgres_without_early_delivery_loses_and_repeats_nothing() {
    leader_killed(Backend::Postgres, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_start_together_on_an_empty_database() {
    let Some(cluster) = ProcessCluster::start(Backend::MySql, 3).await else { return };
    cluster.wait_healthy().await;
    let leader = cluster.wait_leader(None).await;
    for index in 0..3 {
        let status = cluster.get(index, "/api/v1/scheduler/status").await.expect("status answers");
        assert_eq!(status["leader"]["instance_id"], format!("node-{leader}"), "{status}");
        assert_eq!(status["instances"].as_array().map(Vec::len), Some(3), "{status}");
    }

    // A task created on one follower and triggered on the other reaches the leader's dispatcher.
    let receipts = Receipts::default();
    let executor = recording_executor(&cluster, &receipts).await;
    let (first, second) = ((leader + 1) % 3, (leader + 2) % 3);
    let (status, task) = cluster.post(first, "/api/v1/tasks", json!({"name": "tick"})).await;
    assert_eq!(status, 201, "{task}");
    let (status, triggered) = cluster.post(second, "/api/v1/tasks/tick/trigger", json!({"parameters": {}})).await;
    assert_eq!(status, 202, "{triggered}");
    wait_for("the manual execution to reach the executor", Duration::from_secs(10), || async {
        (received(&receipts).len() == 1).then_some(())
    })
    .await;
    let id = triggered["execution_id"].as_str().expect("execution id");
    let execution = wait_for("the manual execution to succeed", Duration::from_secs(10), || async {
        cluster.get(first, &format!("/api/v1/executions/{id}")).await.filter(|e| e["status"] == "success")
    })
    .await;
    assert_eq!(execution["trigger_type"], "manual");
    executor.shutdown().await.expect("executor stops");
    cluster.stop().await;
}

/// On SIGTERM the leader releases the lock at once, so a follower leads within a heartbeat or two, not
/// after `lock_timeout`; the leader then exits 0. Its log lines carry the request id of the request they serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigterm_hands_over_at_once_and_exits_zero() {
    let env = [("JOBS_SCHEDULER__LOCK_TIMEOUT", "30s")];
    let Some(mut cluster) = ProcessCluster::start_with(Backend::MySql, 3, &env).await else { return };
    cluster.wait_healthy().await;
    let leader = cluster.wait_leader(None).await;

    let response = cluster
        .client
        .post(format!("{}/api/v1/tasks", cluster.address(leader)))
        .header("x-request-id", "sigterm-test-create")
        .json(&json!({"name": "nightly", "cron_expression": "0 0 3 * * *"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers().get("x-request-id").and_then(|id| id.to_str().ok()), Some("sigterm-test-create"));

    let sent_at = Instant::now();
    cluster.sigterm(leader);
    let new_leader = wait_for("a follower to lead after SIGTERM", Duration::from_secs(15), || {
        let cluster = &cluster;
        async move {
            for index in (0..3).filter(|index| *index != leader) {
                let status = cluster.get(index, "/api/v1/scheduler/status").await;
                if status.is_some_and(|status| status["role"] == "leader") {
                    return Some(index);
                }
            }
            None
        }
    })
    .await;
    let handover = sent_at.elapsed();
    // Heartbeat 1 s: one blocked `GET_LOCK` answers the moment the lock is freed; 30 s would be the lock timeout.
    assert!(handover < Duration::from_secs(5), "node {new_leader} led {handover:?} after SIGTERM to node {leader}");

    let status = cluster.wait_exit(leader, Duration::from_secs(30)).await;
    let log = cluster.log(leader);
    assert_eq!(status.code(), Some(0), "the leader exited with {status} after SIGTERM; its log:\n{log}");
    assert!(log.contains("released the lock"), "the leader's log should say it released the lock:\n{log}");
    assert!(log.contains("stopped"), "the leader's log should end with `stopped`:\n{log}");
    let created = log.lines().find(|line| line.contains("task created")).expect("the leader logged `task created`");
    assert!(created.contains("request_id=sigterm-test-create"), "{created}");
    assert_eq!(cluster.wait_leader(Some(leader)).await, new_leader);
    cluster.stop().await;
}

/// Issue 8's rolling restart: each instance in turn gets SIGTERM, exits 0 and comes back, leader included, while an
/// every-second task runs; every slot reaches the executor exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_and_repeats_nothing() {
    let Some(mut cluster) = ProcessCluster::start(Backend::MySql, 3).await else { return };
    cluster.wait_healthy().await;
    let leader = cluster.wait_leader(None).await;
    let receipts = Receipts::default();
    let executor = recording_executor(&cluster, &receipts).await;
    let (status, task) =
        cluster.post(leader, "/api/v1/tasks", json!({"name": "tick", "cron_expression": "* * * * * *"})).await;
    assert_eq!(status, 201, "{task}");
    wait_for("two fires before the first restart", Duration::from_secs(30), || async {
        (received(&receipts).len() >= 2).then_some(())
    })
    .await;

    // Followers first, the leader last, as an operator rolls a cluster.
    let mut order: Vec<usize> = (0..3).filter(|index| *index != leader).collect();
    order.push(leader);
    for index in order {
        cluster.sigterm(index);
        let status = cluster.wait_exit(index, Duration::from_secs(30)).await;
        assert_eq!(status.code(), Some(0), "node {index} exited with {status}; its log:\n{}", cluster.log(index));
        cluster.spawn(index);
        cluster.wait_healthy().await;
        cluster.wait_leader(None).await;
        let restarted_at = Timestamp::now();
        wait_for("a fire after the restart", Duration::from_secs(30), || async {
            received(&receipts).iter().any(|slot| slot.millis_since(restarted_at) >= 1000).then_some(())
        })
        .await;
    }

    let any = cluster.wait_leader(None).await;
    let (status, paused) = cluster.post(any, "/api/v1/tasks/tick/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let slots = received(&receipts);
    assert!(slots.len() >= 5, "{slots:?}");
    assert_once_each_without_gaps(&slots);
    executor.shutdown().await.expect("executor stops");
    cluster.stop().await;
}

/// `@every 2s` and `@at` through a leader killed with `kill -9`: the fixed-rate fires keep their period from the
/// task's creation (no drift, none lost or doubled), and the one-shot fires once, after which its task is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_and_at_schedules_survive_a_failover() {
    let Some(mut cluster) = ProcessCluster::start(Backend::MySql, 3).await else { return };
    cluster.wait_healthy().await;
    let leader = cluster.wait_leader(None).await;
    let (every, once) = (Receipts::default(), Receipts::default());
    let (every_slots, once_slots) = (every.clone(), once.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("schedules")
        .instance_id("schedules-executor")
        .scheduler_urls(cluster.addresses())
        .handler("every", move |ctx: JobContext| {
            every_slots.lock().expect("receipts").push(ctx.scheduled_at());
            async move { Ok::<_, JobError>(json!({})) }
        })
        .handler("once", move |ctx: JobContext| {
            once_slots.lock().expect("receipts").push(ctx.scheduled_at());
            async move { Ok::<_, JobError>(json!({})) }
        })
        .build()
        .expect("executor builds");
    let executor = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), executor.registered()).await.expect("executor registers");

    let follower = (leader + 1) % 3;
    let body = json!({"name": "every", "cron_expression": "@every 2s", "execution_mode": "parallel"});
    let (status, task) = cluster.post(follower, "/api/v1/tasks", body).await;
    assert_eq!(status, 201, "{task}");
    // Past the kill and the takeover below.
    let instant = Timestamp::from_millis((Timestamp::now().as_millis() / 1000 + 15) * 1000);
    let body = json!({"name": "once", "cron_expression": format!("@at {instant}")});
    let (status, task) = cluster.post(follower, "/api/v1/tasks", body).await;
    assert_eq!(status, 201, "{task}");
    wait_for("three fixed-rate fires before the kill", Duration::from_secs(30), || async {
        (received(&every).len() >= 3).then_some(())
    })
    .await;

    cluster.kill(leader);
    let killed_at = Timestamp::now();
    let new_leader = cluster.wait_leader(Some(leader)).await;
    wait_for("the one-shot fire", Duration::from_secs(60), || async { (!received(&once).is_empty()).then_some(()) })
        .await;
    wait_for("fixed-rate fires well past the kill", Duration::from_secs(60), || async {
        received(&every).iter().any(|slot| slot.millis_since(killed_at) > 8000).then_some(())
    })
    .await;
    let (status, paused) = cluster.post(new_leader, "/api/v1/tasks/every/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let mut slots = received(&every);
    slots.sort_unstable();
    let steps: Vec<i64> = slots.windows(2).map(|pair| pair[1].millis_since(pair[0])).collect();
    assert!(steps.iter().all(|step| *step == 2000), "every 2 s exactly, none lost or doubled: {slots:?}");
    assert_eq!(received(&once), [instant], "the one-shot fired once, at its instant");
    let task = cluster.get(new_leader, "/api/v1/tasks/once").await.expect("the task is kept");
    assert_eq!((task["enabled"].clone(), task["next_fire_at"].clone()), (json!(false), json!(null)), "{task}");

    executor.shutdown().await.expect("executor stops");
    cluster.stop().await;
}

/// A chain `up → down` through two leaders killed with `kill -9` while `up` fires every second: each successful
/// `up` has exactly one `down`, which ran once, since the chain is written in the transaction that ends `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_lose_and_double_nothing_through_leader_kills() {
    let Some(mut cluster) = ProcessCluster::start(Backend::MySql, 3).await else { return };
    cluster.wait_healthy().await;
    let mut leader = cluster.wait_leader(None).await;
    let downstream: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = downstream.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("chains")
        .instance_id("chains-executor")
        .scheduler_urls(cluster.addresses())
        .handler("up", |ctx: JobContext| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, JobError>(json!({"up": ctx.execution_id().to_string()}))
        })
        .handler("down", move |ctx: JobContext| {
            let upstream = ctx.parameters()["upstream"]["up"].as_str().unwrap_or("none").to_owned();
            seen.lock().expect("downstream").push(upstream);
            async move { Ok::<_, JobError>(json!({})) }
        })
        .build()
        .expect("executor builds");
    let executor = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), executor.registered()).await.expect("executor registers");

    let follower = (leader + 1) % 3;
    let (status, task) = cluster.post(follower, "/api/v1/tasks", json!({"name": "down"})).await;
    assert_eq!(status, 201, "{task}");
    let body =
        json!({"name": "up", "cron_expression": "* * * * * *", "execution_mode": "parallel", "on_success": ["down"]});
    let (status, task) = cluster.post(follower, "/api/v1/tasks", body).await;
    assert_eq!(status, 201, "{task}");
    for _ in 0..2 {
        let before = downstream.lock().expect("downstream").len();
        wait_for("downstream runs before the kill", Duration::from_secs(60), || async {
            (downstream.lock().expect("downstream").len() >= before + 3).then_some(())
        })
        .await;
        cluster.kill(leader);
        leader = cluster.wait_leader(Some(leader)).await;
    }
    let before = downstream.lock().expect("downstream").len();
    wait_for("downstream runs after the kills", Duration::from_secs(60), || async {
        (downstream.lock().expect("downstream").len() >= before + 3).then_some(())
    })
    .await;
    let (status, paused) = cluster.post(leader, "/api/v1/tasks/up/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");

    // Once nothing of either task is open, every successful `up` has had exactly one `down`.
    let settled = wait_for("both tasks to settle", Duration::from_secs(90), || async {
        let mut all = Vec::new();
        for task in ["up", "down"] {
            let page = cluster.get(leader, &format!("/api/v1/executions?task_id={task}&limit=500")).await?;
            all.extend(page["items"].as_array().cloned().unwrap_or_default());
        }
        all.iter().all(|execution| !matches!(execution["status"].as_str(), Some("pending" | "running"))).then_some(all)
    })
    .await;
    let succeeded_up: std::collections::BTreeSet<String> = settled
        .iter()
        .filter(|execution| execution["task_name"] == "up" && execution["status"] == "success")
        .map(|execution| execution["id"].as_str().expect("an id").to_owned())
        .collect();
    let mut down_upstreams: Vec<String> = settled
        .iter()
        .filter(|execution| execution["task_name"] == "down")
        .map(|execution| execution["upstream_execution_id"].as_str().expect("an upstream").to_owned())
        .collect();
    down_upstreams.sort();
    let expected: Vec<String> = succeeded_up.iter().cloned().collect();
    assert!(expected.len() >= 9, "{expected:?}");
    assert_eq!(down_upstreams, expected, "one down execution per successful up");
    let mut ran = downstream.lock().expect("downstream").clone();
    ran.sort();
    assert_eq!(ran, expected, "each down ran once, with its upstream's result");

    executor.shutdown().await.expect("executor stops");
    cluster.stop().await;
}
