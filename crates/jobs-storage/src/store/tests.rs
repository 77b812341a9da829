//! Opening stores: SQLite files, unreachable servers, databases created on demand, migrations racing.

use jobs_model::ErrorKind;

use crate::testing::{test_database_for, test_store_for};
use crate::tests::task;
use crate::{Backend, DatabaseConfig, Error, Store};

#[tokio::test]
async fn sqlite_files_get_their_folder_and_keep_data() {
    let dir = std::env::temp_dir().join(format!("jobs-storage-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/nested/jobs.db?mode=rwc", dir.display());
    let store = Store::connect(&DatabaseConfig::from_url(url.clone())).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let t = task("persisted");
    store.insert_task(&t).await.unwrap();
    store.close().await.unwrap();

    let reopened = Store::connect(&DatabaseConfig::from_url(url)).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.get_task(t.id).await.unwrap(), Some(t));
    assert!(dir.join("nested/jobs.db-wal").exists() || dir.join("nested/jobs.db").exists());
    reopened.close().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn unreachable_servers_fail_fast_without_the_password() {
    let config = DatabaseConfig {
        host: "127.0.0.1".to_owned(),
        port: 1,
        password: "hunter2".into(),
        ..DatabaseConfig::default()
    };
    let err = Store::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let message = err.to_string();
    assert!(message.starts_with("cannot connect to database at mysql://root@127.0.0.1:1/jobs: "), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let err = Store::connect(&DatabaseConfig::from_url("mssql://h/db")).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

async fn migrations_do_not_race(backend: Backend) {
    let Some(db) = test_database_for(backend).await else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Store::connect(&db.config()).await.unwrap());
    }
    let (a, b, c) = tokio::join!(stores[0].migrate(), stores[1].migrate(), stores[2].migrate());
    a.unwrap();
    b.unwrap();
    c.unwrap();
    stores[0].insert_task(&task("after_migration")).await.unwrap();
    for store in stores {
        store.close().await.unwrap();
    }
    db.drop().await;
}

#[tokio::test]
async fn mysql_migrations_do_not_race() {
    migrations_do_not_race(Backend::MySql).await;
}

#[tokio::test]
async fn postgres_migrations_do_not_race() {
    migrations_do_not_race(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_test_stores_are_separate() {
    let a = test_store_for(Backend::Sqlite).await.unwrap();
    let b = crate::testing::test_store().await;
    a.store().insert_task(&task("only_in_a")).await.unwrap();
    assert_eq!(b.find_task_by_name("only_in_a").await.unwrap(), None);
    assert_eq!(a.store().url_redacted(), "sqlite::memory:");
    a.drop().await;
}

/// A connection error as the drivers report a TLS handshake that refused the server's certificate.
fn refused(problem: rustls::CertificateError) -> sea_orm::DbErr {
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(problem));
    sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(sea_orm::sqlx::Error::Io(io))))
}

#[test]
fn refused_server_certificates_are_said_to_be_one() {
    use super::reason;
    use rustls::CertificateError;
    assert_eq!(
        reason(&refused(CertificateError::UnknownIssuer), Backend::MySql),
        "TLS: the server's certificate is not trusted: no trusted CA signed it (a private CA goes in `ssl-ca`)"
    );
    assert_eq!(
        reason(&refused(CertificateError::NotValidForName), Backend::Postgres),
        "TLS: the server's certificate is not trusted: it does not name the host in the URL"
    );
    assert_eq!(
        reason(&refused(CertificateError::Expired), Backend::Postgres),
        "TLS: the server's certificate is not trusted: it is outside its validity period"
    );
    let other = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    let other = sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(other.into())));
    assert_eq!(reason(&other, Backend::MySql), "error communicating with database: reset by peer");
}

#[test]
fn a_ca_check_without_a_host_name_check_is_recognised() {
    use super::verifies_no_host_name;
    assert!(verifies_no_host_name("mysql://u@h/db?ssl-mode=VERIFY_CA&ssl-ca=/ca.pem"));
    assert!(verifies_no_host_name("postgres://u@h/db?sslmode=verify-ca"));
    assert!(!verifies_no_host_name("mysql://u@h/db?ssl-mode=VERIFY_IDENTITY"));
    assert!(!verifies_no_host_name("postgres://u@h/db?sslmode=verify-full"));
    assert!(!verifies_no_host_name("sqlite://data/jobs.db"));
}
