//! HTTPS end to end, with certificates from a CA made here: a scheduler serving `server.tls`, an SDK executor
//! serving HTTPS and calling back over HTTPS, a signed alert to an HTTPS webhook, and an unknown CA refused with a
//! line that says so.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

use jobs_executor::{Executor, ExecutorHandle, JobContext, JobError};
use jobs_model::Timestamp;
use jobs_model::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobs_storage::Backend;

use crate::support::{TestApp, spawn_app_with, wait_for};

const SECRET: &str = "tls-test-secret";

/// A CA of the test's own, and a certificate it signed for `127.0.0.1` and `localhost`, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: String,
}

impl Pki {
    fn new() -> Self {
        let id = uuid::Uuid::now_v7().simple();
        let dir = std::env::temp_dir().join(format!("jobs-tls-{id}"));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("jobs test CA {id}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key")).expect("the CA");
        let key = KeyPair::generate().expect("a server key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("the server certificate");
        let client_key = KeyPair::generate().expect("a client key");
        let client = CertificateParams::new(vec!["scheduler".to_owned()])
            .expect("client params")
            .signed_by(&client_key, &ca)
            .expect("the client certificate");
        let pki = Self { dir, ca: ca.pem() };
        std::fs::write(pki.path("ca.pem"), &pki.ca).expect("ca.pem");
        std::fs::write(pki.path("server.pem"), leaf.pem()).expect("server.pem");
        std::fs::write(pki.path("server.key"), key.serialize_pem()).expect("server.key");
        std::fs::write(pki.path("client.pem"), client.pem()).expect("client.pem");
        std::fs::write(pki.path("client.key"), client_key.serialize_pem()).expect("client.key");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One POST as an HTTPS webhook received it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// An HTTPS webhook on port 0 serving `pki`'s certificate, and taking only clients with a certificate its CA signed.
/// TLS 1.2, so that refusing a client certificate ends the handshake itself: under 1.3 the client may already be
/// sending its request and see the connection reset instead of the refusal.
async fn https_webhook(pki: &Pki) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let router = Router::new()
        .route(
            "/hook",
            post(|State(received): State<Arc<Mutex<Vec<Received>>>>, headers: HeaderMap, body: Bytes| async move {
                received.lock().expect("received").push(Received { headers, body });
                "ok"
            }),
        )
        .with_state(received.clone());
    let cert = std::fs::read(pki.path("server.pem")).expect("server.pem");
    let key = std::fs::read(pki.path("server.key")).expect("server.key");
    let chain = jobs_model::tls::certificates(&cert).expect("the webhook's certificate");
    let key = jobs_model::tls::private_key(&key).expect("the webhook's key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(jobs_model::tls::certificates(pki.ca.as_bytes()).expect("the CA"));
    let clients = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("a client verifier");
    let config = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .expect("the webhook's TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let url = format!("https://127.0.0.1:{}/hook", listener.local_addr().expect("address").port());
    let listener = tls_listener::TlsListener::new(tokio_rustls::TlsAcceptor::from(Arc::new(config)), listener);
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

async fn tick(_: JobContext) -> Result<Value, JobError> {
    Ok(json!({"over": "https"}))
}

async fn boom(_: JobContext) -> Result<Value, JobError> {
    Err(JobError::new("boom"))
}

/// Registers an instance at `base_url` that can run `tick`, as an executor not built on the SDK would.
async fn register(app: &TestApp, instance_id: &str, base_url: &str) {
    let registration =
        json!({"name": "raw", "instance_id": instance_id, "base_url": base_url, "tasks": [{"task_name": "tick"}]});
    let (status, body) = app.post("/api/v1/executors/register", registration).await;
    assert!(status == 200 || status == 201, "{body}");
}

/// Triggers a new task `tick` (no retries) and returns the error its execution failed with.
async fn failed_fire(app: &TestApp) -> String {
    app.create_task(json!({"name": "tick", "cron_expression": "@every 1h", "max_retry": 0})).await;
    let (status, body) = app.post("/api/v1/tasks/tick/trigger", json!({})).await;
    assert!((200..300).contains(&status), "{body}");
    let execution_id = body["execution_id"].as_str().expect("an execution id").to_owned();
    let failed = wait_for("the fire to fail at the handshake", Duration::from_secs(30), || async {
        let (_, execution) = app.get(&format!("/api/v1/executions/{execution_id}")).await;
        (execution["status"] == "failed").then_some(execution)
    })
    .await;
    failed["error"].as_str().expect("a failed execution says why").to_owned()
}

/// An SDK executor serving HTTPS with `pki`'s certificate and calling the scheduler over HTTPS.
async fn https_executor(app: &TestApp, pki: &Pki) -> ExecutorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("tls")
        .instance_id("tls-1")
        .scheduler_urls([app.address.clone()])
        .secret(SECRET)
        .tls_listener(pki.path("server.pem"), pki.path("server.key"))
        .tls_ca_file(pki.path("ca.pem"))
        .handler("tick", tick)
        .handler("boom", boom)
        .build()
        .expect("executor builds");
    let handle = executor.start(listener).await.expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), handle.registered()).await.expect("executor registers over HTTPS");
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_executor_runs_fires_calls_back_over_https_and_a_failure_alerts_an_https_webhook() {
    let pki = Pki::new();
    let (webhook, received) = https_webhook(&pki).await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.tls.cert = pki.file("server.pem");
        config.server.tls.key = pki.file("server.key");
        config.tls.ca_file = pki.file("ca.pem");
        config.tls.client_cert = pki.file("client.pem");
        config.tls.client_key = pki.file("client.key");
        config.auth.executor_secret = Some(SECRET.into());
        config.alerts.webhooks = vec![webhook.clone()];
    })
    .await
    .expect("sqlite")
    .over_https(&pki.ca);
    assert!(app.address.starts_with("https://"), "{}", app.address);
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200, "the API answers over HTTPS");
    let console = app.client.get(app.url("/")).send().await.expect("the console answers over HTTPS");
    let cookie = console.headers().get("set-cookie").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert!(cookie.starts_with("jobs_csrf=") && cookie.contains("; Secure"), "a Secure cookie: {cookie}");

    let executor = https_executor(&app, &pki).await;
    assert!(executor.base_url().starts_with("https://"), "{}", executor.base_url());
    let (_, executors) = app.get("/api/v1/executors").await;
    assert!(executors.to_string().contains(executor.base_url()), "registered at its https url: {executors}");

    let task = app.create_task(json!({"name": "tick", "cron_expression": "* * * * * *"})).await;
    let task_id = task["id"].as_str().expect("task id").to_owned();
    let done = wait_for("two fires dispatched and called back over HTTPS", Duration::from_secs(30), || async {
        let done = app.executions(&task_id, "success").await;
        (done.len() >= 2).then_some(done)
    })
    .await;
    assert_eq!(done[0]["result"]["over"], "https", "{done:?}");

    let boom = app.create_task(json!({"name": "boom", "cron_expression": "@every 1h", "max_retry": 0})).await;
    let (status, body) = app.post("/api/v1/tasks/boom/trigger", json!({})).await;
    assert!((200..300).contains(&status), "{body}");
    let alert = wait_for("the failure's alert at the HTTPS webhook", Duration::from_secs(30), || async {
        received.lock().expect("received").first().cloned()
    })
    .await;
    let body: Value = serde_json::from_slice(&alert.body).expect("an alert is JSON");
    assert_eq!(body["kind"], "execution_failed", "{body}");
    assert_eq!(body["task_id"], boom["id"], "{body}");
    let header = |name: &str| alert.headers.get(name).and_then(|value| value.to_str().ok());
    let verified = signature::verify(
        SECRET.as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &alert.body,
        Timestamp::now().unix_seconds(),
    );
    assert!(verified.is_ok(), "the alert is signed: {verified:?}");

    executor.shutdown().await.expect("the executor stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_whose_certificate_no_trusted_ca_signed_fails_its_fires_with_a_line_saying_so() {
    let trusted = Pki::new();
    let unknown = Pki::new();
    let app =
        spawn_app_with(Backend::Sqlite, |config| config.tls.ca_file = trusted.file("ca.pem")).await.expect("sqlite");
    // The executor serves a certificate of a CA the scheduler does not trust; it reaches the scheduler over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let executor = Executor::builder("tls")
        .instance_id("untrusted-1")
        .scheduler_urls([app.address.clone()])
        .tls_listener(unknown.path("server.pem"), unknown.path("server.key"))
        .handler("tick", tick)
        .build()
        .expect("executor builds")
        .start(listener)
        .await
        .expect("executor starts");
    tokio::time::timeout(Duration::from_secs(30), executor.registered()).await.expect("executor registers");

    let error = failed_fire(&app).await;
    assert!(error.contains(executor.base_url()), "names the endpoint: {error}");
    assert!(
        error.contains(
            "TLS: the server's certificate is not trusted: no trusted CA signed it (a private CA goes in `tls.ca_file`)"
        ),
        "says why: {error}"
    );
    assert!(!error.contains('\n'), "one line: {error}");

    executor.shutdown().await.expect("the executor stops");
    app.stop().await;
}

#[tokio::test]
async fn unreadable_or_mismatched_tls_files_fail_the_start_naming_the_key_and_the_file() {
    let pki = Pki::new();
    let other = Pki::new();
    let cases = [
        ("server.tls.cert", pki.file("missing.pem"), pki.file("server.key"), String::new(), pki.file("missing.pem")),
        ("server.tls.key", pki.file("server.pem"), other.file("server.key"), String::new(), other.file("server.key")),
        ("tls.ca_file", String::new(), String::new(), pki.file("server.key"), pki.file("server.key")),
    ];
    for (key, cert, cert_key, ca_file, named) in cases {
        let mut config = crate::support::test_config("sqlite::memory:");
        config.server.tls.cert = cert;
        config.server.tls.key = cert_key;
        config.tls.ca_file = ca_file;
        let error = match scheduler::Application::build(config).await {
            Ok(_) => panic!("{key}: the application started"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(key), "{key}: {error}");
        assert!(error.contains(&named), "{key}: names {named}: {error}");
        assert!(!error.contains('\n'), "{key}: one line: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_the_listener_serve_the_renewed_certificate() {
    let first = Pki::new();
    let renewed = Pki::new();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.tls.cert = first.file("server.pem");
        config.server.tls.key = first.file("server.key");
    })
    .await
    .expect("sqlite")
    .over_https(&first.ca);
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200, "the first certificate is served");

    std::fs::copy(renewed.path("server.pem"), first.path("server.pem")).expect("renew the certificate");
    std::fs::copy(renewed.path("server.key"), first.path("server.key")).expect("renew the key");
    let hangup = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status();
    assert!(hangup.expect("kill runs").success());
    let renewed_app = app.over_https(&renewed.ca);
    wait_for("the renewed certificate on a new connection", Duration::from_secs(20), || async {
        // A fresh client: a pooled connection would keep the certificate it was opened with.
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(renewed.ca.as_bytes()).expect("the CA"))
            .build()
            .expect("a client");
        client.get(renewed_app.url("/health")).send().await.ok().filter(|answer| answer.status() == 200)
    })
    .await;
    renewed_app.stop().await;
}

/// A server that answers every TLS handshake with a fatal `protocol_version` alert, as one that speaks only TLS
/// versions older than 1.2 does.
async fn old_tls_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let url = format!("https://127.0.0.1:{}", listener.local_addr().expect("address").port());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut hello = [0_u8; 1024];
                let _ = stream.read(&mut hello).await;
                // An alert record (21), TLS 1.0, two bytes: fatal (2), protocol_version (70).
                let _ = stream.write_all(&[21, 3, 1, 0, 2, 2, 70]).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_with_no_tls_version_in_common_fails_its_fire_at_once_saying_so() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.health_check.enabled = false).await.expect("sqlite");
    let base_url = old_tls_server().await;
    register(&app, "old-1", &base_url).await;

    let error = failed_fire(&app).await;
    assert!(error.contains(&format!("{base_url}/execute")), "names the endpoint: {error}");
    assert!(error.contains("TLS: the server accepts no TLS version offered here (1.2 or 1.3)"), "says why: {error}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_demanding_a_client_certificate_the_scheduler_lacks_fails_its_fire_saying_so() {
    let pki = Pki::new();
    let (hook, _) = https_webhook(&pki).await;
    let base_url = hook.trim_end_matches("/hook").to_owned();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.health_check.enabled = false;
        config.tls.ca_file = pki.file("ca.pem");
    })
    .await
    .expect("sqlite");
    register(&app, "mtls-1", &base_url).await;

    let error = failed_fire(&app).await;
    assert!(error.contains(&format!("{base_url}/execute")), "names the endpoint: {error}");
    assert!(error.contains("TLS: the server refused this client's certificate, or wants one"), "says why: {error}");
    app.stop().await;
}
