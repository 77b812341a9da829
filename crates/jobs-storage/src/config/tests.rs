//! The `database` section: defaults, URL resolution, redaction.

use jobs_model::{ErrorKind, Secret};

use crate::config::{DEFAULT_SQLITE_URL, redact_url};
use crate::{Backend, DatabaseConfig};

#[track_caller]
fn check(config: DatabaseConfig, expected: Result<&str, &str>) {
    let got = config.resolved_url().map_err(|err| {
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        err.to_string()
    });
    match expected {
        Ok(url) => assert_eq!(got.as_deref(), Ok(url)),
        Err(fragment) => assert!(got.as_ref().is_err_and(|message| message.contains(fragment)), "{got:?}"),
    }
}

#[test]
fn resolves_the_url() {
    check(DatabaseConfig::default(), Ok(DEFAULT_SQLITE_URL));
    let seed = DatabaseConfig {
        host: "localhost".to_owned(),
        password: Secret::new("p@ss:w/rd"),
        ..DatabaseConfig::default()
    };
    check(seed.clone(), Ok("mysql://root:p%40ss%3Aw%2Frd@localhost:3306/jobs"));
    check(DatabaseConfig { password: Secret::default(), ..seed.clone() }, Ok("mysql://root@localhost:3306/jobs"));
    check(DatabaseConfig { url: Some("postgres://u@db/jobs".to_owned()), ..seed.clone() }, Ok("postgres://u@db/jobs"));
    check(DatabaseConfig { url: Some(" ".to_owned()), ..seed }, Ok("mysql://root:p%40ss%3Aw%2Frd@localhost:3306/jobs"));
    check(DatabaseConfig::from_url("sqlite::memory:"), Ok("sqlite::memory:"));
    check(
        DatabaseConfig::from_url("oracle://scott:tiger@db/jobs"),
        Err("invalid `database.url`: unsupported scheme `oracle`"),
    );
    check(DatabaseConfig::from_url("jobs.db"), Err("`database.url`"));
}

#[test]
fn backends_follow_the_scheme() {
    assert_eq!(Backend::from_url("mysql://h/db").unwrap(), Backend::MySql);
    assert_eq!(Backend::from_url("postgresql://h/db").unwrap(), Backend::Postgres);
    assert_eq!(Backend::from_url("sqlite://data/jobs.db?mode=rwc").unwrap(), Backend::Sqlite);
}

#[test]
fn passwords_never_show() {
    let config = DatabaseConfig { password: Secret::new("hunter2"), ..DatabaseConfig::default() };
    assert!(!format!("{config:?}").contains("hunter2"));
    assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    assert_eq!(redact_url("mysql://root:hunter2@127.0.0.1:3306/jobs"), "mysql://root@127.0.0.1:3306/jobs");
    assert_eq!(redact_url("postgres://u:p@h/db?sslmode=disable"), "postgres://u@h/db?sslmode=disable");
    assert_eq!(redact_url("mysql://h:3306/jobs"), "mysql://h:3306/jobs");
    assert_eq!(redact_url("sqlite://data/jobs.db?mode=rwc"), "sqlite://data/jobs.db?mode=rwc");
    let err = DatabaseConfig::from_url("ftp://u:hunter2@h/x").resolved_url().unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn deserializes_the_seed_section_and_rejects_unknown_keys() {
    let config: DatabaseConfig = serde_json::from_str(
        r#"{"host": "mysql", "port": 3307, "database": "jobs", "user": "root", "password": "pw"}"#,
    )
    .unwrap();
    assert_eq!((config.host.as_str(), config.port, config.password.expose()), ("mysql", 3307, "pw"));
    assert_eq!(config.max_connections, 10);
    assert!(serde_json::from_str::<DatabaseConfig>(r#"{"hots": "mysql"}"#).is_err());
}

#[test]
fn tls_files_in_the_url_must_be_readable() {
    let here = env!("CARGO_MANIFEST_PATH");
    let readable = format!("mysql://root@db:3306/jobs?ssl-mode=VERIFY_CA&ssl-ca={here}");
    assert!(DatabaseConfig::from_url(readable).validate().is_ok());
    let missing = "postgres://jobs@db/jobs?sslmode=verify-full&sslrootcert=/nowhere/ca.pem";
    let error = DatabaseConfig::from_url(missing).validate().unwrap_err().to_string();
    assert!(error.contains("`database.url` names sslrootcert=/nowhere/ca.pem, which cannot be read"), "{error}");
    let error = DatabaseConfig::from_url("mysql://root@db/jobs?ssl-key=%2Fnowhere%2Fkey.pem").validate().unwrap_err();
    assert!(error.to_string().contains("ssl-key=/nowhere/key.pem"), "{error}");
}
