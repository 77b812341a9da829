//! The console in a real browser: headless Chromium driven through WebDriver (chromedriver + fantoccini) against a
//! real scheduler and a real SDK executor. Screenshots of every page at desktop and phone widths go to
//! `target/console/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the tests print one
//! "skipping" line, except under `CI=true`, where they fail saying how to install them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_model::Secret;
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app, spawn_app_with, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser may take for anything: the machine is shared and slow.
const PATIENCE: Duration = Duration::from_secs(60);
/// What a run that no instance can take ends with.
const NO_INSTANCE: &str = "no active healthy executor";

/// Where the screenshots go: the workspace's `target/console/`.
static SHOTS: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console");
    std::fs::create_dir_all(&dir).expect("target/console can be made");
    dir
});

/// A chromedriver process of this test's own, stopped on drop.
struct Driver {
    url: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free port; `None` (after one "skipping" line) when the browser is not installed, which
/// fails the test under `CI=true`.
async fn driver() -> Option<Driver> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|path| !Path::new(path).exists()).collect();
    if !missing.is_empty() {
        let message = format!(
            "{} not installed: run `apt-get install -y chromium chromium-driver` (what `.ci/run` does)",
            missing.join(" and ")
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        #[allow(clippy::print_stderr, reason = "a skipped test says so on stderr, the test harness's channel")]
        {
            eprintln!("skipping the browser tests: {message}");
        }
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let status = format!("{url}/status");
    wait_for("chromedriver to answer", PATIENCE, || async {
        let answer = reqwest::get(&status).await.ok()?;
        answer.status().is_success().then_some(())
    })
    .await;
    Some(Driver { url, child })
}

/// How a test's browser is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Desktop,
    /// 390 px wide, emulated as a touch device with its pixel ratio.
    Phone,
    /// A desktop with JavaScript turned off.
    NoScript,
}

/// A headless Chromium session.
async fn browser(driver: &Driver, kind: Kind) -> Client {
    let phone = kind == Kind::Phone;
    let mut options = json!({
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--window-size=1280,900", "--lang=en-US"],
    });
    if phone {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true},
            "userAgent": "Mozilla/5.0 (Linux; Android 14) Mobile",
        });
    }
    if kind == Kind::NoScript {
        options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url).await.expect("a browser session")
}

/// The example handlers: `report` logs three lines and returns a result; `slow` logs a line a second for four
/// seconds, so that a page can follow it live.
async fn start_executor(app: &TestApp) -> ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("console-demo")
        .instance_id("console-demo-1")
        .scheduler_urls([app.address.clone()])
        .handler("report", |ctx: JobContext| async move {
            ctx.log("loading the day's orders");
            ctx.log(format!("parameters: {}", Value::Object(ctx.parameters().clone())));
            ctx.log("report written");
            Ok::<_, JobError>(json!({"rows": 42, "region": ctx.parameters().get("region")}))
        })
        .handler("slow", |ctx: JobContext| async move {
            for step in 1..=4 {
                ctx.log(format!("step {step} of 4"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok::<_, JobError>(json!({"steps": 4}))
        })
        .build()
        .expect("executor builds");
    let handle = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(PATIENCE, handle.registered()).await.expect("executor registers");
    handle
}

/// What a test does in the browser, with the scheduler's address at hand.
struct Page<'a> {
    client: &'a Client,
    base: String,
    phone: bool,
}

impl Page<'_> {
    async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("page opens");
    }

    async fn find(&self, css: &str) -> Element {
        let found = self.client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await;
        found.unwrap_or_else(|error| panic!("no `{css}` on the page: {error}"))
    }

    async fn path(&self) -> String {
        self.client.current_url().await.expect("current url").path().to_owned()
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    /// Types `text` into the field named `name`, replacing what it held.
    async fn fill(&self, name: &str, text: &str) {
        let field = self.find(&format!("[name='{name}']")).await;
        field.clear().await.expect("field cleared");
        field.send_keys(text).await.expect("typed");
    }

    /// Clicks a button that submits its form, and waits for the page that answers.
    async fn click_button(&self, text: &str) {
        let button = self.find_by_text("button", text).await;
        self.click_and_load(button, &format!("button `{text}`")).await;
    }

    async fn click_link(&self, text: &str) {
        let link = self.find_by_text("a", text).await;
        self.click_and_load(link, &format!("link `{text}`")).await;
    }

    /// Clicks `element` and waits until the page it loads replaced this one, so that nothing after reads the old
    /// page (whose elements would go stale under the reader).
    async fn click_and_load(&self, element: Element, what: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("the page's root element");
        element.click().await.unwrap_or_else(|error| panic!("{what} clicked: {error}"));
        let start = tokio::time::Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(start.elapsed() < PATIENCE, "{what}: no new page within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find_by_text(&self, tag: &str, text: &str) -> Element {
        let xpath = format!("//{tag}[normalize-space(.)='{text}']");
        let found = self.client.wait().at_most(PATIENCE).for_element(Locator::XPath(&xpath)).await;
        found.unwrap_or_else(|error| panic!("no {tag} `{text}` on the page: {error}"))
    }

    /// Polls until the page's `css` element's text satisfies `check` (the page updating itself, or reloaded when
    /// `reload`).
    async fn wait_text(&self, css: &str, what: &str, reload: bool, check: impl Fn(&str) -> bool) -> String {
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
                && check(&text)
            {
                return text;
            }
            assert!(start.elapsed() < PATIENCE, "timed out waiting for {what} in `{css}`");
            tokio::time::sleep(Duration::from_millis(300)).await;
            if reload {
                self.client.refresh().await.expect("page reloads");
            }
        }
    }

    /// Saves the whole page as `target/console/{name}-{desktop|phone}.png`.
    async fn shot(&self, name: &str) {
        // Let the script turn times local and htmx settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let width = if self.phone { 390 } else { 1280 };
        if !self.phone {
            let height = self
                .client
                .execute("return document.documentElement.scrollHeight", vec![])
                .await
                .ok()
                .and_then(|height| height.as_u64())
                .unwrap_or(900);
            let _ = self.client.set_window_size(width, (height as u32 + 140).clamp(900, 4000)).await;
        }
        let png = self.client.screenshot().await.expect("screenshot");
        let kind = if self.phone { "phone" } else { "desktop" };
        std::fs::write(SHOTS.join(format!("{name}-{kind}.png")), png).expect("screenshot saved");
        if !self.phone {
            let _ = self.client.set_window_size(width, 900).await;
        }
    }
}

async fn api(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_seed_from_the_browser() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let executor = start_executor(&app).await;
    let client = browser(&driver, Kind::Desktop).await;
    let page = Page { client: &client, base: app.address.clone(), phone: false };

    // The overview, before there is any task.
    page.open("/").await;
    assert!(page.body().await.contains("No tasks yet"), "the overview says what to do first");
    page.shot("overview-empty").await;

    // A task through the form: a wrong cron is shown next to its field as the user types, then fixed.
    page.open("/ui/tasks").await;
    page.click_link("New task").await;
    page.fill("name", "report").await;
    page.fill("cron_expression", "every morning").await;
    let error = page.wait_text("#err-cron_expression", "the cron error", false, |text| !text.is_empty()).await;
    assert!(error.contains("cron"), "the parser's error is shown: {error}");
    page.shot("task-form-error").await;
    // Submitted anyway (as without JavaScript): the form comes back with the error and what was typed.
    page.click_button("Create task").await;
    assert!(page.text("#err-cron_expression").await.contains("cron"));
    assert_eq!(page.find("[name='name']").await.prop("value").await.expect("value").as_deref(), Some("report"));
    page.fill("cron_expression", "*/2 * * * * *").await;
    page.fill("parameters", r#"{"region": "eu"}"#).await;
    let preview = page.wait_text("#cron-preview", "the next fire times", false, |text| text.contains(':')).await;
    assert!(preview.lines().count() >= 5, "five fire times: {preview}");
    page.shot("task-form").await;
    page.click_button("Create task").await;
    page.wait_text("h1", "the task's page", false, |text| text.contains("report")).await;
    let task = api(&app, "/api/v1/tasks/report").await;
    assert_eq!(task["cron_expression"], "*/2 * * * * *");
    let task_id = task["id"].as_str().expect("task id").to_owned();

    // It fires: the task's page lists a successful cron execution.
    page.wait_text("#executions", "a successful cron run", true, |text| text.contains("success")).await;
    page.shot("task-detail").await;

    // An execution's page shows its log lines.
    page.find("#executions a[href^='/ui/executions/']").await.click().await.expect("execution opens");
    let logs = page.wait_text("#logs", "the log lines", true, |text| text.contains("report written")).await;
    assert!(logs.contains("loading the day's orders"), "{logs}");
    page.shot("execution").await;

    // Pause (no more fires), then resume.
    page.open(&format!("/ui/tasks/{task_id}")).await;
    page.click_button("Pause").await;
    page.find_by_text("button", "Resume").await;
    assert_eq!(api(&app, "/api/v1/tasks/report").await["enabled"], false);
    page.click_button("Resume").await;
    page.find_by_text("button", "Pause").await;
    assert_eq!(api(&app, "/api/v1/tasks/report").await["enabled"], true);

    // Trigger with parameters, from the list.
    page.open("/ui/tasks").await;
    page.shot("tasks").await;
    page.open(&format!("/ui/tasks/{task_id}/trigger")).await;
    page.fill("parameters", "{not json").await;
    page.click_button("Trigger now").await;
    assert!(page.text("#err-parameters").await.to_lowercase().contains("json"), "bad JSON is shown inline");
    page.fill("parameters", r#"{"region": "apac", "day": "2026-11-27"}"#).await;
    page.shot("trigger").await;
    page.click_button("Trigger now").await;
    let status = page.wait_text("#live", "the manual run to succeed", false, |text| text.contains("success")).await;
    assert!(status.contains("manual"), "{status}");
    let logs = page.text("#logs").await;
    assert!(logs.contains("apac"), "the handler saw the parameters: {logs}");
    let manual_run = page.path().await;

    // A long run followed live: its page updates itself until it ends.
    app.create_task(json!({"name": "slow", "execution_mode": "parallel"})).await;
    page.open("/ui/tasks/slow/trigger").await;
    page.click_button("Trigger now").await;
    page.wait_text("#logs", "the first step", false, |text| text.contains("step 1 of 4")).await;
    page.shot("execution-running").await;
    let logs =
        page.wait_text("#logs", "the last step, without a reload", false, |text| text.contains("step 4 of 4")).await;
    assert!(logs.contains("step 2 of 4"), "{logs}");
    page.wait_text("#live", "the run to end", false, |text| text.contains("success")).await;

    // An executor in maintenance takes no work.
    page.open("/ui/executors").await;
    page.shot("executors").await;
    page.fill("reason", "kernel upgrade").await;
    page.click_button("Maintenance").await;
    page.wait_text("main", "the maintenance reason", false, |text| text.contains("kernel upgrade")).await;
    let executors = api(&app, "/api/v1/executors").await;
    assert_eq!(executors[0]["status"], "maintenance", "{executors}");
    page.shot("executors-maintenance").await;
    // The leader's view of the instances is at most a second old: once a fire of `report` has found no instance,
    // a trigger finds none either.
    wait_for("a fire with no instance to take it", PATIENCE, || async {
        let failed = app.executions(&task_id, "failed").await;
        failed.iter().any(|e| e["error"].as_str().is_some_and(|error| error.contains(NO_INSTANCE))).then_some(())
    })
    .await;
    page.open("/ui/tasks/report/trigger").await;
    page.click_button("Trigger now").await;
    let status = page.wait_text("#live", "the run to find no instance", true, |text| text.contains("failed")).await;
    assert!(status.contains(NO_INSTANCE), "the instance in maintenance took no work: {status}");
    page.open("/ui/executors").await;
    page.click_button("Back to active").await;
    page.find_by_text("button", "Maintenance").await;

    // Delete asks first.
    page.open(&format!("/ui/tasks/{task_id}/delete")).await;
    page.shot("task-delete").await;

    // The overview after all this.
    page.open("/").await;
    page.shot("overview").await;

    // The same pages at a phone's width.
    let phone_client = browser(&driver, Kind::Phone).await;
    let phone = Page { client: &phone_client, base: app.address.clone(), phone: true };
    for (name, path) in [
        ("overview", "/".to_owned()),
        ("tasks", "/ui/tasks".to_owned()),
        ("task-form", "/ui/tasks/new".to_owned()),
        ("task-detail", format!("/ui/tasks/{task_id}")),
        ("execution", manual_run.clone()),
        ("trigger", format!("/ui/tasks/{task_id}/trigger")),
        ("executors", "/ui/executors".to_owned()),
    ] {
        phone.open(&path).await;
        phone.find("main").await;
        let overflow = phone_client
            .execute("return document.documentElement.scrollWidth > window.innerWidth + 1", vec![])
            .await
            .expect("script runs");
        assert_eq!(overflow, Value::Bool(false), "{path} is wider than a phone");
        phone.shot(name).await;
    }
    phone_client.close().await.expect("session closes");
    client.close().await.expect("session closes");
    executor.shutdown().await.expect("the executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_asks_for_a_token_when_the_api_has_them() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.auth.api_tokens = vec![Secret::new("console-t0ken")];
    })
    .await
    .expect("SQLite is always available");
    let client = browser(&driver, Kind::Desktop).await;
    let page = Page { client: &client, base: app.address.clone(), phone: false };

    page.open("/ui/tasks").await;
    assert_eq!(page.path().await, "/ui/login", "a visitor without a session is sent to sign in");
    page.fill("token", "wrong").await;
    page.click_button("Sign in").await;
    assert!(page.text("#token-error").await.contains("not accepted"));
    page.shot("login-error").await;
    page.fill("token", "console-t0ken").await;
    page.click_button("Sign in").await;
    page.wait_text("h1", "the page asked for first", false, |text| text.contains("Tasks")).await;
    assert_eq!(page.path().await, "/ui/tasks");
    let cookies = client.get_all_cookies().await.expect("cookies");
    let session = cookies.iter().find(|cookie| cookie.name() == "jobs_session").expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");

    page.click_button("Sign out").await;
    page.find("#token").await;
    page.open("/").await;
    assert_eq!(page.path().await, "/ui/login", "signed out");
    page.shot("login").await;
    client.close().await.expect("session closes");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_without_javascript() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let client = browser(&driver, Kind::NoScript).await;
    let page = Page { client: &client, base: app.address.clone(), phone: false };

    // The form, sent as is: the server answers with the errors in place and the values kept.
    page.open("/ui/tasks/new").await;
    page.fill("name", "nightly").await;
    page.fill("cron_expression", "0 61 * * *").await;
    page.fill("timezone", "Mars/Olympus").await;
    page.click_button("Create task").await;
    assert!(!page.text("#err-cron_expression").await.is_empty(), "the cron error is next to its field");
    assert!(page.text("#err-timezone").await.contains("Mars/Olympus"), "the time zone error names the value");
    page.shot("task-form-nojs").await;
    page.fill("cron_expression", "0 0 3 * * *").await;
    page.fill("timezone", "Europe/Berlin").await;
    page.click_button("Create task").await;
    page.wait_text("h1", "the new task's page", false, |text| text.contains("nightly")).await;
    assert_eq!(api(&app, "/api/v1/tasks/nightly").await["timezone"], "Europe/Berlin");

    // A trigger lands on the execution's page (no executor runs `nightly`, so it ends failed with the reason).
    page.open("/ui/tasks/nightly/trigger").await;
    page.click_button("Trigger now").await;
    let live = page.wait_text("#live", "the failed run", true, |text| text.contains("failed")).await;
    assert!(live.contains("manual"), "{live}");
    page.shot("execution-nojs").await;
    client.close().await.expect("session closes");
    app.stop().await;
}
