//! Test support (feature `testing`): fresh migrated stores on SQLite, and on throwaway MySQL/PostgreSQL databases.
//!
//! The servers come from `JOBS_TEST_MYSQL_URL` / `JOBS_TEST_POSTGRES_URL`, defaulting to the local ones.
//! `servers` starts private servers (TLS among their settings) for tests that need their own.
//! An unreachable server skips the test with one "skipping" line, except under `CI=true`, where it fails.
#![allow(clippy::print_stderr, reason = "a skipped test says so on stderr, the test harness's channel")]

pub mod servers;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::store::{open, quote};
use crate::{Backend, DatabaseConfig, Error, Store};

/// The MySQL server tests use, unless `JOBS_TEST_MYSQL_URL` names another.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";
/// The PostgreSQL server tests use, unless `JOBS_TEST_POSTGRES_URL` names another.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// A fresh, migrated, in-memory SQLite store.
pub async fn test_store() -> Store {
    let store = Store::connect(&DatabaseConfig::from_url("sqlite::memory:"))
        .await
        .unwrap_or_else(|err| panic!("cannot open sqlite::memory: ({err})"));
    store.migrate().await.unwrap_or_else(|err| panic!("cannot migrate sqlite::memory: ({err})"));
    store
}

/// A fresh migrated store on `backend`: in memory for SQLite, a new uniquely named database on a server otherwise.
/// `None` (after one "skipping" line) when the server is unreachable, unless `CI=true`.
pub async fn test_store_for(backend: Backend) -> Option<TestDb> {
    let db = test_database_for(backend).await?;
    if let Err(err) = db.store().migrate().await {
        db.drop().await;
        panic!("cannot migrate a fresh {backend} test database: {err}");
    }
    Some(db)
}

/// Like [`test_store_for`], but not migrated: for tests of migrations themselves.
pub async fn test_database_for(backend: Backend) -> Option<TestDb> {
    if backend == Backend::Sqlite {
        let store = Store::connect(&DatabaseConfig::from_url("sqlite::memory:"))
            .await
            .unwrap_or_else(|err| panic!("cannot open sqlite::memory: ({err})"));
        let server = Server { backend, prefix: String::new(), query: String::new() };
        let url = "sqlite::memory:".to_owned();
        return Some(TestDb { store, server, database: String::new(), url, dropped: false });
    }
    let server = Server::from_env(backend);
    let database = format!("jobs_test_{}", uuid::Uuid::now_v7().simple());
    let url = server.database_url(&database);
    // Connecting creates the database, as it does for a real deployment.
    match Store::connect(&DatabaseConfig::from_url(url.clone())).await {
        Ok(store) => Some(TestDb { store, server, database, url, dropped: false }),
        Err(err @ Error::Connect { .. }) => {
            server.unreachable(&err.to_string());
            None
        }
        Err(err) => panic!("cannot open a fresh {backend} test database: {err}"),
    }
}

/// The server URL tests use for `backend` (from the environment, or the local default).
pub fn server_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::MySql => ("JOBS_TEST_MYSQL_URL", DEFAULT_MYSQL_URL),
        Backend::Postgres => ("JOBS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        Backend::Sqlite => return "sqlite::memory:".to_owned(),
    };
    std::env::var(var).ok().filter(|url| !url.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// A test database that is dropped on teardown: call [`TestDb::drop`], or let `Drop` do it as a fallback.
#[derive(Debug)]
pub struct TestDb {
    store: Store,
    server: Server,
    database: String,
    url: String,
    dropped: bool,
}

impl TestDb {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn backend(&self) -> Backend {
        self.server.backend
    }

    /// The full URL of this database, for more stores (cluster tests) or lock connections.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::from_url(self.url.clone())
    }

    /// Closes the store and drops the database.
    pub async fn drop(mut self) {
        self.store.close().await.ok();
        if self.server.backend != Backend::Sqlite {
            drop_database(&self.server, &self.database).await;
        }
        self.dropped = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped || self.server.backend == Backend::Sqlite {
            return;
        }
        // Drop cannot await, and may run inside a runtime: drop the database from a thread with its own.
        let server = self.server.clone();
        let database = self.database.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(drop_database(&server, &database));
        });
        dropper.join().ok();
    }
}

async fn drop_database(server: &Server, database: &str) {
    let Ok(admin) = open(&server.admin_url(), server.backend, &crate::store::Pool::single()).await else {
        eprintln!("cannot drop test database `{database}`: server unreachable");
        return;
    };
    let quoted = quote(server.backend, database);
    let result = match server.backend {
        Backend::MySql => drop_mysql(&admin, &quoted).await,
        _ => admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")).await.map(drop),
    };
    if let Err(err) = result {
        eprintln!("cannot drop test database `{database}`: {err}");
    }
    admin.close().await.ok();
}

async fn drop_mysql(admin: &DatabaseConnection, quoted: &str) -> Result<(), sea_orm::DbErr> {
    // A connection that died mid-transaction may hold a metadata lock for a while: do not wait forever.
    admin.execute_unprepared("SET SESSION lock_wait_timeout = 10").await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {quoted}")).await.map(drop)
}

/// A database server: `scheme://authority` and the `?query` of its URL.
#[derive(Debug, Clone)]
struct Server {
    backend: Backend,
    prefix: String,
    query: String,
}

impl Server {
    fn from_env(backend: Backend) -> Self {
        let url = server_url(backend);
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base.to_owned(), format!("?{query}")),
            None => (url.clone(), String::new()),
        };
        // Drop any database path: tests make their own databases.
        let authority_start = base.find("://").map_or(0, |at| at + 3);
        let prefix = match base[authority_start..].find('/') {
            Some(slash) => base[..authority_start + slash].to_owned(),
            None => base,
        };
        Self { backend, prefix, query }
    }

    /// Where to create and drop databases (PostgreSQL needs an existing database to connect to).
    fn admin_url(&self) -> String {
        let path = if self.backend == Backend::Postgres { "/postgres" } else { "" };
        format!("{}{path}{}", self.prefix, self.query)
    }

    fn database_url(&self, database: &str) -> String {
        format!("{}/{database}{}", self.prefix, self.query)
    }

    /// Skips (one line) or, under `CI=true`, fails with how to start the server.
    fn unreachable(&self, reason: &str) {
        let (name, var, start) = match self.backend {
            Backend::MySql => (
                "MySQL",
                "JOBS_TEST_MYSQL_URL",
                "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
            ),
            _ => (
                "PostgreSQL",
                "JOBS_TEST_POSTGRES_URL",
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            ),
        };
        if under_ci() {
            panic!("{name} is required under CI=true but {reason}; start it with `{start}` or point {var} at a server");
        }
        eprintln!("skipping: {name} unreachable ({reason}); start it with `{start}` or set {var}");
    }
}

/// Whether tests run under `CI=true`, where a missing database fails them instead of skipping them.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}
