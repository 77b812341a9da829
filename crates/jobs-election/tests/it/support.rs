//! Election nodes on a test database, and polling with deadlines.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use jobs_election::{ElectionConfig, Lease, Role, for_store, mysql_lock_name, postgres_lock_id};
use jobs_storage::Backend;
use jobs_storage::testing::TestDb;

pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long the lock connection and the first acquisition may take in a fresh cluster.
pub(crate) const STARTUP: Duration = Duration::from_secs(10);

/// A lock key of this test alone: lock names are global to a MySQL server, so it carries the database name.
pub(crate) fn lock_key(db: &TestDb) -> String {
    let database = db.url().rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default();
    format!("jobs_leader_{database}")
}

/// One scheduler instance's election, running in a task.
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) lease: Lease,
    role: watch::Receiver<Role>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<jobs_election::Result<()>>,
}

impl Node {
    /// Starts an election with a 1 s heartbeat (3 s lease) for `lock_key` on `db`.
    pub(crate) fn start(db: &TestDb, id: &str, lock_key: &str) -> Self {
        let config = ElectionConfig {
            instance_id: id.to_owned(),
            lock_key: lock_key.to_owned(),
            lock_timeout: jobs_model::Duration::from_secs(30),
            heartbeat_interval: jobs_model::Duration(HEARTBEAT),
        };
        let lease = Lease::default();
        let election = for_store(db.store(), db.url(), config, lease.clone());
        let (role_sender, role) = watch::channel(Role::Follower);
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let task = tokio::spawn(async move { election.run(role_sender, shutdown_receiver).await });
        Self { id: id.to_owned(), lease, role, shutdown, task }
    }

    pub(crate) fn role(&self) -> Role {
        *self.role.borrow()
    }

    pub(crate) fn role_receiver(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Shuts the election down and checks that it ends cleanly as a follower without a lease.
    pub(crate) async fn stop(self) {
        self.shutdown.send_replace(true);
        let ended = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        let result = ended.unwrap_or_else(|_| panic!("{} did not stop within 10 s", self.id));
        result.unwrap_or_else(|err| panic!("{} panicked: {err}", self.id)).unwrap();
        assert_eq!(*self.role.borrow(), Role::Follower, "{} after shutdown", self.id);
        assert!(!self.lease.is_valid(), "{} kept its lease after shutdown", self.id);
    }
}

/// Polls `condition` until it holds, failing at `deadline`; returns how long it took from `since`.
pub(crate) async fn wait_until(
    what: &str,
    since: Instant,
    deadline: Instant,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    loop {
        if condition() {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "timed out after {:?} waiting until {what}", since.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until exactly one of `a` and `b` leads, and returns them as (leader, follower).
pub(crate) async fn leader_and_follower(a: Node, b: Node) -> (Node, Node) {
    let start = Instant::now();
    wait_until("one instance leads", start, start + STARTUP, || a.role().is_leader() || b.role().is_leader()).await;
    assert!(!(a.role().is_leader() && b.role().is_leader()), "both instances lead");
    if a.role().is_leader() { (a, b) } else { (b, a) }
}

/// Kills, from another connection, the database session that holds `lock_key`; returns how many were killed.
pub(crate) async fn kill_lock_session(db: &TestDb, lock_key: &str) -> usize {
    let conn = db.store().connection();
    let backend = conn.get_database_backend();
    match db.backend() {
        Backend::MySql => {
            // IS_USED_LOCK names the connection that holds the lock.
            let sql = "SELECT CAST(IS_USED_LOCK(?) AS SIGNED) AS holder";
            let values: [Value; 1] = [mysql_lock_name(lock_key).into_owned().into()];
            let row = conn.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap().unwrap();
            let Some(holder) = row.try_get::<Option<i64>>("", "holder").unwrap() else {
                return 0;
            };
            conn.execute_unprepared(&format!("KILL {holder}")).await.unwrap();
            1
        }
        _ => {
            let sql = "SELECT pg_terminate_backend(pid) AS killed FROM pg_locks \
                       WHERE locktype = 'advisory' AND granted \
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                       AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1";
            let values: [Value; 1] = [postgres_lock_id(lock_key).into()];
            let rows = conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap();
            rows.iter().filter(|row| row.try_get::<bool>("", "killed").unwrap()).count()
        }
    }
}
