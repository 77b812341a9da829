//! `cargo xtask cluster`: the topology of `deploy/docker/docker-compose.yml` as local processes.
//!
//! The compose file is the one source: each scheduler service (three, on 8081-8083) and the executor service
//! start with its `environment`, except that the database URL names a local MySQL database and compose service
//! names (`http://scheduler1:8081`) become 127.0.0.1. Ctrl-C stops them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Format, Yaml};
use serde::Deserialize;

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/jobs_cluster";

/// The compose file, relative to the repository root.
pub(crate) const COMPOSE_FILE: &str = "deploy/docker/docker-compose.yml";

/// The parts of a compose file the local cluster reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Compose {
    pub(crate) services: BTreeMap<String, Service>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Service {
    /// Set for the services built from this repository's Dockerfile.
    #[serde(default)]
    build: Option<serde_json::Value>,
    /// Empty: the image's default, the scheduler.
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, serde_json::Value>,
}

impl Compose {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        Figment::from(Yaml::file_exact(path)).extract().with_context(|| format!("cannot read {}", path.display()))
    }
}

impl Service {
    /// The environment as strings (compose also takes numbers and booleans).
    pub(crate) fn env(&self) -> BTreeMap<String, String> {
        let text = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        self.environment.iter().map(|(key, value)| (key.clone(), text(value))).collect()
    }

    /// Which of this repository's binaries the service runs, if any.
    pub(crate) fn binary(&self) -> Option<&'static str> {
        self.build.as_ref()?;
        match self.command.first().map(String::as_str) {
            None | Some("scheduler") => Some("scheduler"),
            Some("example-executor") => Some("example-executor"),
            Some(_) => None,
        }
    }
}

/// One local process of the cluster.
#[derive(Debug)]
pub(crate) struct Node {
    /// The compose service it stands for.
    pub(crate) name: String,
    pub(crate) binary: &'static str,
    pub(crate) env: BTreeMap<String, String>,
}

/// The schedulers (in name order), then the executors, with the compose environment made local.
pub(crate) fn local_nodes(compose: &Compose, database_url: &str) -> Vec<Node> {
    let localise = |value: &str| {
        compose
            .services
            .keys()
            .fold(value.to_owned(), |value, name| value.replace(&format!("//{name}:"), "//127.0.0.1:"))
    };
    let mut nodes: Vec<Node> = compose
        .services
        .iter()
        .filter_map(|(name, service)| {
            let binary = service.binary()?;
            let mut env: BTreeMap<String, String> = service
                .env()
                .into_iter()
                .map(|(key, value)| {
                    let value = if key == "JOBS_DATABASE__URL" { database_url.to_owned() } else { localise(&value) };
                    (key, value)
                })
                .collect();
            if binary == "scheduler" {
                // Each container has its own logs/; here the processes share one.
                env.entry("JOBS_LOG__FILE".to_owned()).or_insert_with(|| format!("logs/{name}.log"));
            }
            Some(Node { name: name.clone(), binary, env })
        })
        .collect();
    nodes.sort_by_key(|node| (node.binary != "scheduler", node.name.clone()));
    nodes
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut url = DEFAULT_URL.to_owned();
    let mut release = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => url = args.next().context("--database-url needs a URL")?.clone(),
            "--release" => release = true,
            other => anyhow::bail!("unknown argument `{other}` for cluster"),
        }
    }
    let nodes = local_nodes(&Compose::load(&root().join(COMPOSE_FILE))?, &url);
    anyhow::ensure!(!nodes.is_empty(), "{COMPOSE_FILE} names no scheduler or executor service");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "scheduler", "-p", "example-executor"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "cargo build failed");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = |name: &str| format!("{target}/{}/{name}", if release { "release" } else { "debug" });
    std::fs::create_dir_all("logs")?;

    // The executor retries its registration until a scheduler answers.
    let mut children: Vec<(String, Child)> = Vec::new();
    for node in &nodes {
        let child = Command::new(bin(node.binary))
            .envs(&node.env)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", node.name, node.binary))?;
        let port = node.env.get("JOBS_SERVER__PORT").or_else(|| node.env.get("JOBS_EXECUTOR_PORT"));
        let at = port.map(|port| format!(" (http://127.0.0.1:{port})")).unwrap_or_default();
        children.push((format!("{}{at}", node.name), child));
    }
    for (name, child) in &children {
        println!("started {name}, pid {}", child.id());
    }
    println!("database {url}; try: curl localhost:8081/api/v1/scheduler/status; Ctrl-C stops everything");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stopped_early = runtime.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return None,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    for (name, child) in &mut children {
                        if let Ok(Some(status)) = child.try_wait() {
                            return Some(format!("{name} exited with {status}"));
                        }
                    }
                }
            }
        }
    });
    // SIGTERM, the executor first so that it can still deregister: each process shuts down gracefully.
    children.reverse();
    for (_, child) in &children {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for (name, child) in &mut children {
        let status = child.wait()?;
        println!("{name} stopped: {status}");
    }
    match stopped_early {
        Some(reason) => anyhow::bail!("{reason}; stopped the others"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
