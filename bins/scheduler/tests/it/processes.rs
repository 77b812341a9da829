//! A cluster of real scheduler processes on one database, for failover tests (`kill -9` included).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use jobs_storage::Backend;
use jobs_storage::testing::{TestDb, test_database_for};

use crate::support::wait_for;

/// One scheduler process.
pub(crate) struct Node {
    pub(crate) port: u16,
    child: Option<Child>,
}

/// Scheduler processes sharing one fresh (unmigrated) database; killed on drop.
pub(crate) struct ProcessCluster {
    pub(crate) nodes: Vec<Node>,
    pub(crate) client: reqwest::Client,
    url: String,
    /// Extra `JOBS_*` variables every node gets, after the defaults below.
    env: Vec<(String, String)>,
    db: Option<TestDb>,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

impl ProcessCluster {
    /// Starts `n` schedulers at the same moment on an empty database of `backend`.
    pub(crate) async fn start(backend: Backend, n: usize) -> Option<Self> {
        Self::start_with(backend, n, &[]).await
    }

    /// Like [`ProcessCluster::start`], with extra environment variables for every node.
    pub(crate) async fn start_with(backend: Backend, n: usize, env: &[(&str, &str)]) -> Option<Self> {
        let db = test_database_for(backend).await?;
        let url = db.url().to_owned();
        let env = env.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        let mut cluster = Self { nodes: Vec::new(), client: reqwest::Client::new(), url, env, db: Some(db) };
        for index in 0..n {
            let port = free_port();
            cluster.nodes.push(Node { port, child: None });
            cluster.spawn(index);
        }
        Some(cluster)
    }

    /// (Re)starts node `index` on its port.
    pub(crate) fn spawn(&mut self, index: usize) {
        let port = self.nodes[index].port;
        let output = std::fs::File::create(self.log_path(index)).map(Stdio::from).unwrap_or_else(|_| Stdio::null());
        let child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .env("JOBS_DATABASE__URL", &self.url)
            .env("JOBS_SERVER__HOST", "127.0.0.1")
            .env("JOBS_SERVER__PORT", port.to_string())
            .env("JOBS_SCHEDULER__INSTANCE_ID", format!("node-{index}"))
            .env("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s")
            .env("JOBS_EXECUTORS__HEARTBEAT_INTERVAL", "1s")
            .env("JOBS_LOG__FILE", "")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdout(output)
            .stderr(Stdio::null())
            .spawn()
            .expect("the scheduler binary starts");
        self.nodes[index].child = Some(child);
    }

    pub(crate) fn address(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[index].port)
    }

    pub(crate) fn addresses(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|index| self.address(index)).collect()
    }

    fn log_path(&self, index: usize) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("jobs-cluster-{}.log", self.nodes[index].port))
    }

    /// What node `index` has logged so far (its stdout).
    pub(crate) fn log(&self, index: usize) -> String {
        std::fs::read_to_string(self.log_path(index)).unwrap_or_default()
    }

    /// Sends SIGTERM to node `index` (a graceful stop); [`ProcessCluster::wait_exit`] collects it.
    pub(crate) fn sigterm(&self, index: usize) {
        let child = self.nodes[index].child.as_ref().expect("node is running");
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM failed: {sent}");
    }

    /// Waits up to `deadline` for node `index` to exit and returns how it did; a node that overstays is killed.
    pub(crate) async fn wait_exit(&mut self, index: usize, deadline: Duration) -> ExitStatus {
        let mut child = self.nodes[index].child.take().expect("node is running");
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("the process can be waited for") {
                return status;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {index} did not exit within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9` of node `index`.
    pub(crate) fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) async fn get(&self, index: usize, path: &str) -> Option<Value> {
        let response = self.client.get(format!("{}{path}", self.address(index))).send().await.ok()?;
        response.json().await.ok()
    }

    pub(crate) async fn post(&self, index: usize, path: &str, body: Value) -> (u16, Value) {
        let response =
            self.client.post(format!("{}{path}", self.address(index))).json(&body).send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every running node answers `/health`.
    pub(crate) async fn wait_healthy(&self) {
        for index in 0..self.nodes.len() {
            if self.nodes[index].child.is_none() {
                continue;
            }
            wait_for(&format!("node {index} to answer /health"), Duration::from_secs(60), || async move {
                self.get(index, "/health").await.filter(|health| health["status"] == "ok")
            })
            .await;
        }
    }

    /// The index of the node that says it leads, once exactly one running node does.
    pub(crate) async fn wait_leader(&self, excluding: Option<usize>) -> usize {
        wait_for("exactly one leader", Duration::from_secs(30), || async move {
            let mut leaders = Vec::new();
            for index in 0..self.nodes.len() {
                if self.nodes[index].child.is_none() || Some(index) == excluding {
                    continue;
                }
                if self.get(index, "/api/v1/scheduler/status").await.is_some_and(|status| status["role"] == "leader") {
                    leaders.push(index);
                }
            }
            (leaders.len() == 1).then(|| leaders[0])
        })
        .await
    }

    /// Stops every process and drops the database.
    pub(crate) async fn stop(mut self) {
        for index in 0..self.nodes.len() {
            if let Some(child) = &self.nodes[index].child {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.wait();
            }
        }
        if let Some(db) = self.db.take() {
            db.drop().await;
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
