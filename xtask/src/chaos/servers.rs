//! The database servers the chaos scenarios own: a MariaDB server and a PostgreSQL cluster of their own on spare
//! ports, which they kill, freeze and restart; never the machine's shared servers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::chaos::Backend;
use crate::procs::wait_for;

/// Where PostgreSQL's programs are: the newest version installed.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL under /usr/lib/postgresql")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().context("no PostgreSQL version under /usr/lib/postgresql")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
}

/// A port nothing listens on now (the system's choice for port 0).
pub(crate) fn spare_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("cannot run {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn signal(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).stderr(Stdio::null()).status();
    }
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent is the second field after the command name, which may hold spaces.
            let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
            rest.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

/// A database server of the harness's own, stopped (and its files removed) when dropped.
#[derive(Debug)]
pub(crate) struct DatabaseServer {
    backend: Backend,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    /// The MariaDB server process; PostgreSQL runs detached under `pg_ctl`.
    child: Option<Child>,
}

impl DatabaseServer {
    /// Creates a data directory and starts a server on a spare port; `logs` receives its log.
    pub(crate) async fn start(backend: Backend, dir: &Path, logs: &Path) -> anyhow::Result<Self> {
        let port = spare_port()?;
        let (data, log) = match backend {
            Backend::MariaDb => (dir.join(format!("mariadb-{port}")), logs.join(format!("mariadb-{port}.log"))),
            // PostgreSQL runs as `postgres`, which must own its directory and may not reach `target/`.
            _ => (
                PathBuf::from(format!("/tmp/jobs-chaos-pg-{port}")),
                PathBuf::from(format!("/tmp/jobs-chaos-pg-{port}.log")),
            ),
        };
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(logs)?;
        let mut server = Self { backend, port, data, log, child: None };
        match backend {
            Backend::MariaDb => run(Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", server.data.display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"]))?,
            _ => {
                run(Command::new("chown").args(["postgres", &server.data.display().to_string()]))?;
                let initdb = postgres_bin()?.join("initdb");
                run(Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(initdb)
                    .args(["-A", "trust", "-U", "postgres", "-D"])
                    .arg(server.data.join("data")))?;
            }
        }
        server.launch().await?;
        Ok(server)
    }

    /// The server's URL, with no database.
    pub(crate) fn url(&self) -> String {
        match self.backend {
            Backend::MariaDb => format!("mysql://root@127.0.0.1:{}", self.port),
            _ => format!("postgres://postgres@127.0.0.1:{}", self.port),
        }
    }

    /// Starts the server on its data directory and waits until it answers.
    async fn launch(&mut self) -> anyhow::Result<()> {
        match self.backend {
            Backend::MariaDb => {
                let log = std::fs::File::options().create(true).append(true).open(&self.log)?;
                let child = Command::new("/usr/sbin/mariadbd")
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data.display()))
                    .arg(format!("--port={}", self.port))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={}", self.data.join("mariadb.sock").display()))
                    .arg(format!("--pid-file={}", self.data.join("mariadb.pid").display()))
                    .args(["--user=root", "--max-connections=500", "--innodb-buffer-pool-size=64M"])
                    .stdout(Stdio::from(log.try_clone()?))
                    .stderr(Stdio::from(log))
                    .spawn()
                    .context("cannot start mariadbd")?;
                self.child = Some(child);
            }
            _ => {
                let pg_ctl = postgres_bin()?.join("pg_ctl");
                run(Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(pg_ctl)
                    .arg("-D")
                    .arg(self.data.join("data"))
                    .args(["-o", &format!("-p {} -k /tmp -c max_connections=300", self.port), "-l"])
                    .arg(&self.log)
                    .args(["-w", "start"]))?;
            }
        }
        let url = self.url();
        wait_for("the database server", Duration::from_secs(60), || answers(&url)).await
    }

    /// The server's processes: MariaDB's one, or PostgreSQL's postmaster and its children.
    fn pids(&self) -> Vec<u32> {
        match self.backend {
            Backend::MariaDb => self.child.as_ref().map(Child::id).into_iter().collect(),
            _ => {
                let pid_file = std::fs::read_to_string(self.data.join("data/postmaster.pid")).unwrap_or_default();
                let Some(postmaster) = pid_file.lines().next().and_then(|line| line.trim().parse::<u32>().ok()) else {
                    return Vec::new();
                };
                let mut pids = vec![postmaster];
                pids.extend(children(postmaster));
                pids
            }
        }
    }

    /// SIGSTOP: the server stops answering while connections stay open.
    pub(crate) fn freeze(&self) {
        signal(&self.pids(), "STOP");
    }

    /// SIGCONT after [`Self::freeze`].
    pub(crate) fn thaw(&self) {
        signal(&self.pids(), "CONT");
    }

    /// A crash: `kill -9` of MariaDB; PostgreSQL's immediate stop (every process quits at once, no checkpoint,
    /// crash recovery at the next start), since a killed postmaster leaves children holding its shared memory.
    pub(crate) fn crash(&mut self) {
        self.thaw();
        match self.backend {
            Backend::MariaDb => {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            _ => self.pg_stop(),
        }
    }

    /// Starts the server again on the same data directory and port, after [`Self::crash`].
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.launch().await
    }

    fn pg_stop(&self) {
        if let Ok(bin) = postgres_bin() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for DatabaseServer {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Whether the server at `url` takes a connection and a query within two seconds.
pub(crate) async fn answers(url: &str) -> Option<()> {
    use jobs_migrations::sea_orm::{ConnectionTrait, Database};
    let attempt = async {
        let db = Database::connect(url).await.ok()?;
        db.execute_unprepared("SELECT 1").await.ok()?;
        let _ = db.close().await;
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten()
}
