//! `spawn_app()`: a scheduler on port 0 over a fresh database, with typed helpers.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use jobs_storage::testing::{TestDb, test_store_for};
use jobs_storage::{Backend, DatabaseConfig};
use scheduler::{Application, Config};

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber_init();
    }
});

fn tracing_subscriber_init() -> anyhow::Result<()> {
    let config = scheduler::LogConfig { file: String::new(), level: "info".to_owned(), ..Default::default() };
    scheduler::init_logging(&config).map(|_| ())
}

/// A running scheduler instance.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    db: Option<TestDb>,
}

/// A scheduler over SQLite in memory.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await.expect("SQLite is always available")
}

/// A scheduler over a fresh database of `backend`; `None` when its server is unreachable (never under CI).
pub(crate) async fn spawn_app_on(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub(crate) async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    LazyLock::force(&TRACING);
    let db = test_store_for(backend).await?;
    let mut config = test_config(db.url());
    configure(&mut config);
    let (app, db) = if backend == Backend::Sqlite {
        // An in-memory database belongs to its connection: the application opens its own.
        db.drop().await;
        (Application::build(config).await.expect("the application builds"), None)
    } else {
        (Application::build(config).await.expect("the application builds"), Some(db))
    };
    Some(start(app, db))
}

/// A scheduler on exactly `config` (its database is the caller's to clean up).
pub(crate) async fn spawn_app_from(config: Config) -> TestApp {
    LazyLock::force(&TRACING);
    start(Application::build(config).await.expect("the application builds"), None)
}

/// The config tests start from: port 0, no log file, one-second executor heartbeats.
pub(crate) fn test_config(database_url: &str) -> Config {
    let mut config = Config::default();
    config.server.host = "127.0.0.1".to_owned();
    config.server.port = 0;
    config.database = DatabaseConfig::from_url(database_url.to_owned());
    config.log.file = String::new();
    config.executors.heartbeat_interval = jobs_model::Duration::from_secs(1);
    config
}

fn start(app: Application, db: Option<TestDb>) -> TestApp {
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp { address, client: reqwest::Client::new(), stop: Some(stop), task: Some(task), db }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.client.post(self.url(path)).json(&body).send().await.expect("request sent");
        read(response).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.client.put(self.url(path)).json(&body).send().await.expect("request sent");
        read(response).await
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        read(response).await
    }

    /// Creates a task and returns it.
    pub(crate) async fn create_task(&self, body: Value) -> Value {
        let (status, task) = self.post("/api/v1/tasks", body).await;
        assert_eq!(status, 201, "{task}");
        task
    }

    /// The executions of a task with a status, newest first.
    pub(crate) async fn executions(&self, task: &str, status: &str) -> Vec<Value> {
        let (code, page) = self.get(&format!("/api/v1/executions?task_id={task}&status={status}&limit=500")).await;
        assert_eq!(code, 200, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// Talks to an instance serving `server.tls` whose certificate a CA in `ca_pem` signed.
    pub(crate) fn over_https(mut self, ca_pem: &str) -> Self {
        self.address = self.address.replacen("http://", "https://", 1);
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the CA is PEM");
        self.client = reqwest::Client::builder().add_root_certificate(ca).build().expect("an HTTPS client");
        self
    }

    /// Stops the application and drops its database.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the application task ends").expect("the application stops cleanly");
        }
        if let Some(db) = self.db.take() {
            db.drop().await;
        }
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Polls `check` until it returns `Some`, failing after `deadline`.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// The test's own handle on the application's database (MySQL and PostgreSQL only: SQLite in memory belongs
    /// to the application's connection).
    pub(crate) fn store(&self) -> Option<&jobs_storage::Store> {
        self.db.as_ref().map(TestDb::store)
    }

    /// The value of one Prometheus sample (`name{labels}` exactly as printed), 0 if absent.
    pub(crate) async fn metric(&self, sample: &str) -> f64 {
        let text =
            self.client.get(self.url("/metrics")).send().await.expect("request sent").text().await.expect("body");
        text.lines()
            .filter_map(|line| line.strip_prefix(sample))
            .filter_map(|rest| rest.trim().parse::<f64>().ok())
            .next()
            .unwrap_or(0.0)
    }
}

/// The console as a browser without JavaScript uses it: the CSRF cookie a first visit got, sent back with every
/// request and repeated in every form; redirects are answered, not followed, so that tests see them.
pub(crate) struct Console {
    client: reqwest::Client,
    base: String,
    pub(crate) csrf: String,
}

impl Console {
    /// A first visit (to the task list), which hands out the CSRF cookie.
    pub(crate) async fn open(app: &TestApp) -> Self {
        let client = no_redirects();
        let response = client.get(app.url("/ui/tasks")).send().await.expect("request sent");
        let cookie = set_cookie(response.headers(), "jobs_csrf").expect("the console sets the CSRF cookie");
        let csrf = cookie_value(&cookie).to_owned();
        Self { client, base: app.address.clone(), csrf }
    }

    /// A page: its status and HTML.
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let request = self.client.get(format!("{}{path}", self.base));
        let response = request.header("cookie", format!("jobs_csrf={}", self.csrf)).send().await.expect("request sent");
        (response.status().as_u16(), response.text().await.expect("body"))
    }

    /// Posts a form with the CSRF field; answers the status, the `Location` header and the body.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let mut fields = fields.to_vec();
        fields.push(("_csrf", &self.csrf));
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("jobs_csrf={}", self.csrf))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&fields))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or("");
        let location = location.to_owned();
        (status, location, response.text().await.expect("body"))
    }
}

/// A client that answers redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds")
}

/// `application/x-www-form-urlencoded`: letters, digits and `-._~` as they are, spaces as `+`, the rest `%XX`.
pub(crate) fn form_body(fields: &[(&str, &str)]) -> String {
    let escape = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{byte:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(key, value)| format!("{}={}", escape(key), escape(value))).collect::<Vec<_>>().join("&")
}

/// The whole `Set-Cookie` line that sets cookie `name`.
pub(crate) fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|line| line.starts_with(&prefix))
        .map(str::to_owned)
}

/// The value in a `Set-Cookie` line.
pub(crate) fn cookie_value(line: &str) -> &str {
    let pair = line.split(';').next().unwrap_or(line);
    pair.split_once('=').map_or("", |(_, value)| value)
}
