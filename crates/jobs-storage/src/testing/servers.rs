//! Database servers of one's own: a MariaDB server or a PostgreSQL cluster on a spare port, which a caller may
//! freeze, crash and restart, optionally serving TLS; never the machine's shared servers.
//!
//! Used by the chaos harness (`cargo xtask chaos`) and by tests that need a server configured their way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::Backend;

/// How long a started server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a server could not be set up or started.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(String);

impl ServerError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn io(what: impl std::fmt::Display, err: std::io::Error) -> Self {
        Self(format!("{what}: {err}"))
    }
}

/// PEM files for a server that serves TLS: its certificate (chain), its private key, and the CA it trusts.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server's certificate, PEM.
    pub cert: PathBuf,
    /// The server certificate's private key, PEM.
    pub key: PathBuf,
    /// The certificate authority, PEM (MariaDB's `--ssl-ca`).
    pub ca: PathBuf,
}

/// Where PostgreSQL's programs are: the newest version installed.
fn postgres_bin() -> Result<PathBuf, ServerError> {
    let entries = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|err| ServerError::io("no PostgreSQL under /usr/lib/postgresql", err))?;
    let mut versions: Vec<u32> = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect();
    versions.sort_unstable();
    let version = versions.last().ok_or_else(|| ServerError::new("no PostgreSQL version under /usr/lib/postgresql"))?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
}

/// A port nothing listens on now (the system's choice for port 0).
pub fn spare_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(command: &mut Command) -> Result<(), ServerError> {
    let output = command.output().map_err(|err| ServerError::io(format!("cannot run {command:?}"), err))?;
    if !output.status.success() {
        return Err(ServerError::new(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
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

/// The data directory, the log while the server runs, and where the log is kept after it.
fn paths(backend: Backend, port: u16, dir: &Path, logs: &Path) -> (PathBuf, PathBuf, PathBuf) {
    match backend {
        Backend::MySql => {
            let log = logs.join(format!("mariadb-{port}.log"));
            (dir.join(format!("mariadb-{port}")), log.clone(), log)
        }
        // PostgreSQL runs as `postgres`, which must own its directory and may not reach the caller's.
        _ => (
            PathBuf::from(format!("/tmp/jobs-chaos-pg-{port}")),
            PathBuf::from(format!("/tmp/jobs-chaos-pg-{port}.log")),
            logs.join(format!("postgres-{port}.log")),
        ),
    }
}

/// The last column of the first row `sql` answers on the server at `url`, as text (empty without a row).
async fn setting(url: &str, sql: &str) -> Result<String, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(url).await?;
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await;
    let _ = db.close().await;
    match row? {
        Some(row) => row.try_get_by_index::<String>(row.column_names().len().saturating_sub(1)),
        None => Ok(String::new()),
    }
}

/// Copies `from` to `to`, naming both on failure.
fn copy(from: &Path, to: &Path) -> Result<(), ServerError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|err| ServerError::io(format!("cannot copy {} to {}", from.display(), to.display()), err))
}

/// A database server of the caller's own, stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct DatabaseServer {
    backend: Backend,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    /// Where the log ends up when the server is dropped (PostgreSQL writes its own under `/tmp` meanwhile).
    kept_log: PathBuf,
    /// The MariaDB server process; PostgreSQL runs detached under `pg_ctl`.
    child: Option<Child>,
    /// The TLS files copied into `data`, when the server serves TLS.
    tls: Option<ServerTls>,
}

impl DatabaseServer {
    /// Creates a data directory and starts a MySQL (MariaDB) or PostgreSQL server on a spare port, without TLS.
    /// MariaDB's data lives under `dir`; PostgreSQL's under `/tmp` (its user may not reach `dir`); `logs` receives
    /// MariaDB's log, and PostgreSQL's (written under `/tmp` while it runs) when the server is dropped.
    pub async fn start(backend: Backend, dir: &Path, logs: &Path) -> Result<Self, ServerError> {
        Self::start_with(backend, dir, logs, None).await
    }

    /// Like [`Self::start`], serving TLS with `tls`'s files (copied next to the data). PostgreSQL then refuses
    /// unencrypted TCP connections; its local socket stays open without TLS.
    pub async fn start_with_tls(
        backend: Backend,
        dir: &Path,
        logs: &Path,
        tls: &ServerTls,
    ) -> Result<Self, ServerError> {
        Self::start_with(backend, dir, logs, Some(tls)).await
    }

    async fn start_with(
        backend: Backend,
        dir: &Path,
        logs: &Path,
        tls: Option<&ServerTls>,
    ) -> Result<Self, ServerError> {
        if backend == Backend::Sqlite {
            return Err(ServerError::new("SQLite has no server to start"));
        }
        let port = spare_port().map_err(|err| ServerError::io("no spare port", err))?;
        let (data, log, kept_log) = paths(backend, port, dir, logs);
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)
            .map_err(|err| ServerError::io(format!("cannot create {}", data.display()), err))?;
        std::fs::create_dir_all(logs)
            .map_err(|err| ServerError::io(format!("cannot create {}", logs.display()), err))?;
        // From here on, dropping the server removes its files.
        let mut server = Self { backend, port, data, log, kept_log, child: None, tls: None };
        server.install(tls)?;
        server.launch().await?;
        if server.tls.is_some() {
            server.check_tls().await?;
        }
        Ok(server)
    }

    /// Checks that the server says it serves TLS (`have_ssl` on MariaDB, `ssl` on PostgreSQL).
    async fn check_tls(&self) -> Result<(), ServerError> {
        let (sql, expected) = match self.backend {
            Backend::MySql => ("SHOW VARIABLES LIKE 'have_ssl'", "YES"),
            _ => ("SHOW ssl", "on"),
        };
        let value = tokio::time::timeout(Duration::from_secs(10), setting(&self.url(), sql))
            .await
            .map_err(|_| ServerError::new(format!("no answer to `{sql}` within 10s")))?
            .map_err(|err| ServerError::new(format!("cannot ask the server about TLS: {err}")))?;
        if value != expected {
            return Err(ServerError::new(format!(
                "the server was given TLS files but `{sql}` says `{value}`, not `{expected}`; see {}",
                self.log.display()
            )));
        }
        Ok(())
    }

    /// Initializes the data directory, and the TLS settings when `tls` is given.
    fn install(&mut self, tls: Option<&ServerTls>) -> Result<(), ServerError> {
        match self.backend {
            Backend::MySql => run(Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", self.data.display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"]))?,
            _ => {
                run(Command::new("chown").args(["postgres", &self.data.display().to_string()]))?;
                let initdb = postgres_bin()?.join("initdb");
                run(Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(initdb)
                    .args(["-A", "trust", "-U", "postgres", "-D"])
                    .arg(self.data.join("data")))?;
            }
        }
        if let Some(tls) = tls {
            self.tls = Some(self.install_tls(tls)?);
        }
        Ok(())
    }

    /// Copies the TLS files next to the data; for PostgreSQL, owned by `postgres` (the key readable by it alone),
    /// with `ssl = on` and client authentication that takes TCP connections only over TLS.
    fn install_tls(&self, tls: &ServerTls) -> Result<ServerTls, ServerError> {
        let copied = ServerTls {
            cert: self.data.join("server-cert.pem"),
            key: self.data.join("server-key.pem"),
            ca: self.data.join("ca.pem"),
        };
        copy(&tls.cert, &copied.cert)?;
        copy(&tls.key, &copied.key)?;
        copy(&tls.ca, &copied.ca)?;
        if self.backend == Backend::Postgres {
            for file in [&copied.cert, &copied.key, &copied.ca] {
                run(Command::new("chown").arg("postgres").arg(file))?;
            }
            run(Command::new("chmod").arg("0600").arg(&copied.key))?;
            self.configure_postgres_tls(&copied)?;
        }
        Ok(copied)
    }

    fn configure_postgres_tls(&self, tls: &ServerTls) -> Result<(), ServerError> {
        let cluster = self.data.join("data");
        let settings =
            format!("\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n", tls.cert.display(), tls.key.display());
        let conf = cluster.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
            .map_err(|err| ServerError::io(format!("cannot write {}", conf.display()), err))?;
        let hba = "local all all trust\n\
                   hostssl all all 127.0.0.1/32 trust\n\
                   hostnossl all all 127.0.0.1/32 reject\n";
        let hba_file = cluster.join("pg_hba.conf");
        std::fs::write(&hba_file, hba)
            .map_err(|err| ServerError::io(format!("cannot write {}", hba_file.display()), err))
    }

    /// The server's kind: [`Backend::MySql`] (MariaDB) or [`Backend::Postgres`].
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The TCP port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL as its administrator (`root` or `postgres`, no password), with no database and no TLS
    /// options (the drivers' default upgrades to TLS when the server offers it, without verifying it).
    pub fn url(&self) -> String {
        match self.backend {
            Backend::MySql => format!("mysql://root@127.0.0.1:{}", self.port),
            _ => format!("postgres://postgres@127.0.0.1:{}", self.port),
        }
    }

    /// Starts the server on its data directory and waits until it answers.
    async fn launch(&mut self) -> Result<(), ServerError> {
        match self.backend {
            Backend::MySql => self.launch_mariadb()?,
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
        self.wait_until_ready().await
    }

    fn launch_mariadb(&mut self) -> Result<(), ServerError> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|err| ServerError::io(format!("cannot open {}", self.log.display()), err))?;
        let stderr = log.try_clone().map_err(|err| ServerError::io("cannot share the log file", err))?;
        let mut command = Command::new("/usr/sbin/mariadbd");
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.data.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", self.data.join("mariadb.pid").display()))
            .args(["--user=root", "--max-connections=500", "--innodb-buffer-pool-size=64M"]);
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--ssl-cert={}", tls.cert.display()))
                .arg(format!("--ssl-key={}", tls.key.display()))
                .arg(format!("--ssl-ca={}", tls.ca.display()));
        }
        let child = command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|err| ServerError::io("cannot start /usr/sbin/mariadbd", err))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_until_ready(&mut self) -> Result<(), ServerError> {
        let url = self.url();
        let start = tokio::time::Instant::now();
        while answers(&url).await.is_none() {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                return Err(ServerError::new(format!(
                    "the database server quit ({status}); see {}",
                    self.log.display()
                )));
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(ServerError::new(format!(
                    "timed out after {READY_TIMEOUT:?} waiting for the database server; see {}",
                    self.log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The server's processes: MariaDB's one, or PostgreSQL's postmaster and its children.
    fn pids(&self) -> Vec<u32> {
        match self.backend {
            Backend::MySql => self.child.as_ref().map(Child::id).into_iter().collect(),
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
    pub fn freeze(&self) {
        signal(&self.pids(), "STOP");
    }

    /// SIGCONT after [`Self::freeze`].
    pub fn thaw(&self) {
        signal(&self.pids(), "CONT");
    }

    /// A crash: `kill -9` of MariaDB; PostgreSQL's immediate stop (every process quits at once, no checkpoint,
    /// crash recovery at the next start), since a killed postmaster leaves children holding its shared memory.
    pub fn crash(&mut self) {
        self.thaw();
        match self.backend {
            Backend::MySql => {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            _ => self.pg_stop(),
        }
    }

    /// Starts the server again on the same data directory and port, after [`Self::crash`].
    pub async fn restart(&mut self) -> Result<(), ServerError> {
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
        if self.log != self.kept_log && std::fs::copy(&self.log, &self.kept_log).is_ok() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Whether the server at `url` takes a connection and a query within two seconds.
async fn answers(url: &str) -> Option<()> {
    use sea_orm::{ConnectionTrait, Database};
    let attempt = async {
        let db = Database::connect(url).await.ok()?;
        db.execute_unprepared("SELECT 1").await.ok()?;
        let _ = db.close().await;
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten()
}

/// A server of the test's own for `backend` (serving TLS with `tls`), its data and log under `dir`. `None` after one
/// "skipping" line when it cannot be started, unless `CI=true`, where the test fails saying what to install.
pub async fn test_server(backend: Backend, dir: &Path, tls: Option<&ServerTls>) -> Option<DatabaseServer> {
    let started = match tls {
        Some(tls) => DatabaseServer::start_with_tls(backend, dir, dir, tls).await,
        None => DatabaseServer::start(backend, dir, dir).await,
    };
    let err = match started {
        Ok(server) => return Some(server),
        Err(err) => err,
    };
    let (name, install) = match backend {
        Backend::MySql => ("MariaDB", "install `mariadb-server` (mariadb-install-db and /usr/sbin/mariadbd)"),
        _ => ("PostgreSQL", "install `postgresql` (initdb and pg_ctl under /usr/lib/postgresql) and run as root"),
    };
    // The reason may hold a command's multi-line output: the skip is one line.
    let reason = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    if super::under_ci() {
        panic!("{name} is required under CI=true but a server of the test's own cannot start ({reason}); {install}");
    }
    eprintln!("skipping: cannot start a {name} server of the test's own ({reason}); {install}");
    None
}
