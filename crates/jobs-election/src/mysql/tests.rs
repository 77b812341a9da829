//! Tests of the MySQL lock session: the meaning of `GET_LOCK` answers, and sessions taking turns on a real server.

use jobs_storage::Backend;
use jobs_storage::testing::test_store_for;

use crate::campaign::{LockSession, Spec};
use crate::mysql::{MySqlSession, get_lock_answer};
use crate::tests::config;
use crate::timing::Timing;

/// `Some(leader)` for an answer that is a yes or a no, `None` for one that is an error.
#[track_caller]
fn check(answer: Option<i64>, expected: Option<bool>) {
    assert_eq!(get_lock_answer(answer).ok(), expected, "GET_LOCK answered {answer:?}");
}

#[test]
fn only_one_means_leader() {
    check(Some(1), Some(true));
    check(Some(0), Some(false));
    // NULL: MariaDB's answer to a negative wait, MySQL's for a killed session. Never leadership.
    check(None, None);
    check(Some(-1), None);
    check(Some(2), None);
}

#[tokio::test]
async fn sessions_take_turns() {
    let Some(db) = test_store_for(Backend::MySql).await else {
        return;
    };
    let config = config(&format!("jobs_test_turns_{}", uuid_suffix(db.url())));
    let timing = Timing::new(&config);
    let options = MySqlSession::parse(db.url()).unwrap();
    let spec = Spec { key: &config.lock_key, address: "test", timing };
    let mut first = MySqlSession::open(&options, spec).await.unwrap();
    let mut second = MySqlSession::open(&options, spec).await.unwrap();
    assert!(!first.holds().await.unwrap());
    assert!(first.acquire().await.unwrap());
    assert!(first.holds().await.unwrap());
    // The second session waits its whole attempt, then hears no.
    assert!(!second.acquire().await.unwrap());
    assert!(!second.holds().await.unwrap());
    // One release frees the lock: the session held it once.
    assert!(first.release().await.unwrap());
    assert!(!first.release().await.unwrap());
    assert!(!first.holds().await.unwrap());
    assert!(second.acquire().await.unwrap());
    assert!(second.holds().await.unwrap());
    // Closing the session frees its lock.
    second.close().await;
    assert!(first.acquire().await.unwrap());
    first.close().await;
    db.drop().await;
}

/// The test database's name: unique, so lock names built from it do not meet other tests' on the shared server.
fn uuid_suffix(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned()
}
