//! Stores over TLS: a private MariaDB server and PostgreSQL cluster serving a certificate of a test CA, reached with
//! verified TLS; a CA that did not sign the server's certificate fails fast, with a message that says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jobs_model::{Task, TaskId, TaskSpec, Timestamp};
use jobs_storage::testing::servers::{DatabaseServer, ServerTls, test_server};
use jobs_storage::{Backend, DatabaseConfig, Store, redact_url};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sea_orm::{ConnectionTrait, Database, Statement};

/// The password of the MariaDB account; no error message may contain it.
const PASSWORD: &str = "tlsS3cretPw";
/// The database each test creates on its server.
const DATABASE: &str = "jobs_tls_test";
/// How long a connection with the wrong CA may take to fail.
const FAIL_WITHIN: Duration = Duration::from_secs(30);

/// A test CA, a server certificate it signed for `127.0.0.1` and `localhost`, and an unrelated CA, as PEM files in a
/// fresh directory (removed on drop), which also holds the servers' data and logs.
struct Pki {
    dir: PathBuf,
    server: ServerTls,
    other_ca: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("jobs-tls-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = certificate_authority("jobs test CA");
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let server_cert = params.signed_by(&server_key, &ca).unwrap();
        let other_ca = certificate_authority("unrelated CA");
        let server =
            ServerTls { cert: dir.join("server.pem"), key: dir.join("server-key.pem"), ca: dir.join("ca.pem") };
        write(&server.cert, &server_cert.pem());
        write(&server.key, &server_key.serialize_pem());
        write(&server.ca, &ca.pem());
        let other_ca_file = dir.join("other-ca.pem");
        write(&other_ca_file, &other_ca.pem());
        Self { dir, server, other_ca: other_ca_file }
    }

    fn ca(&self) -> &Path {
        &self.server.ca
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn write(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

/// Runs `statements` as the server's administrator.
async fn admin(server: &DatabaseServer, statements: &[&str]) {
    let db = Database::connect(server.url()).await.unwrap();
    for sql in statements {
        db.execute_unprepared(sql).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
    db.close().await.unwrap();
}

/// One text value of a one-row query, on one of the store's connections.
async fn value(store: &Store, sql: &str, column: &str) -> Option<String> {
    let db = store.connection();
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap()?;
    Some(row.try_get::<String>("", column).unwrap())
}

/// Opens and migrates the store at `url`, and writes and reads back a task through it.
async fn store_round_trip(url: &str, task_name: &str) -> Store {
    let store = Store::connect(&DatabaseConfig::from_url(url)).await.unwrap_or_else(|err| panic!("{err}"));
    store.migrate().await.unwrap();
    let now = Timestamp::from_millis(1_700_000_000_123);
    let spec = TaskSpec { cron_expression: Some("0 * * * * *".to_owned()), ..TaskSpec::named(task_name) };
    let task = Task { id: TaskId::new(), spec, next_fire_at: Some(now), created_at: now, updated_at: now };
    store.insert_task(&task).await.unwrap();
    assert_eq!(store.get_task(task.id).await.unwrap(), Some(task));
    store
}

/// Connecting to `url` fails within [`FAIL_WITHIN`], with one line that names the redacted address and says that
/// no trusted CA signed the server's certificate, naming the URL's `ca_option`.
async fn refused_certificate(url: &str, ca_option: &str) {
    let config = DatabaseConfig::from_url(url);
    let result = tokio::time::timeout(FAIL_WITHIN, Store::connect(&config)).await;
    let err = result.unwrap_or_else(|_| panic!("no answer within {FAIL_WITHIN:?} from {}", redact_url(url)));
    let message = err.expect_err("a server certificate of another CA was accepted").to_string();
    assert!(!message.contains(PASSWORD), "{message}");
    let expected = format!(
        "cannot connect to database at {}: TLS: the server's certificate is not trusted: no trusted CA signed it \
         (a private CA goes in `{ca_option}`)",
        redact_url(url)
    );
    assert_eq!(message, expected);
}

#[tokio::test]
async fn mariadb_store_over_verified_tls() {
    let pki = Pki::new();
    let Some(server) = test_server(Backend::MySql, &pki.dir, Some(&pki.server)).await else {
        return;
    };
    admin(
        &server,
        &[
            &format!("CREATE USER 'jobs_tls'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL"),
            &format!("GRANT ALL ON `{DATABASE}`.* TO 'jobs_tls'@'%'"),
        ],
    )
    .await;
    let base = format!("mysql://jobs_tls:{PASSWORD}@127.0.0.1:{}/{DATABASE}", server.port());

    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let url = format!("{base}?ssl-mode={mode}&ssl-ca={}", pki.ca().display());
        let store = store_round_trip(&url, &format!("over_{mode}")).await;
        let cipher = value(&store, "SHOW STATUS LIKE 'Ssl_cipher'", "Value").await.unwrap_or_default();
        assert!(!cipher.is_empty(), "the {mode} session is not encrypted");
        store.close().await.unwrap();
    }

    let plain = format!("{base}?ssl-mode=DISABLED");
    let err = Store::connect(&DatabaseConfig::from_url(plain)).await.expect_err("REQUIRE SSL let a plain session in");
    assert!(err.to_string().contains("Access denied"), "{err}");

    refused_certificate(&format!("{base}?ssl-mode=VERIFY_CA&ssl-ca={}", pki.other_ca.display()), "ssl-ca").await;
}

#[tokio::test]
async fn postgres_store_over_verified_tls() {
    let pki = Pki::new();
    let Some(server) = test_server(Backend::Postgres, &pki.dir, Some(&pki.server)).await else {
        return;
    };
    let base = format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", server.port());

    for mode in ["verify-ca", "verify-full"] {
        let url = format!("{base}?sslmode={mode}&sslrootcert={}", pki.ca().display());
        let store = store_round_trip(&url, &format!("over_{mode}")).await;
        let sql = "SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        assert_eq!(value(&store, sql, "ssl").await.as_deref(), Some("true"), "the {mode} session is not encrypted");
        store.close().await.unwrap();
    }

    let plain = format!("{base}?sslmode=disable");
    let err = Store::connect(&DatabaseConfig::from_url(plain)).await.expect_err("the server took a plain session");
    assert!(err.to_string().contains("no encryption"), "{err}");

    refused_certificate(&format!("{base}?sslmode=verify-full&sslrootcert={}", pki.other_ca.display()), "sslrootcert")
        .await;
}
