//! Tests of session timeouts and tags, and of a new leader ending a deposed leader's sessions.

use sea_orm::ConnectionTrait;

use crate::tests::task;
use crate::{Backend, DatabaseConfig, SessionTag, Store};

async fn tagged(store: &Store, instance_id: &str) -> Store {
    let config = DatabaseConfig::from_url(store.full_url());
    Store::connect(&config).await.unwrap().tagged(&config, SessionTag::new(instance_id)).await.unwrap()
}

async fn scalar(store: &Store, sql: &str) -> String {
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(store.connection().get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

/// Every pooled session waits at most 5 s for a row lock and is named by its tag, so that a frozen instance's
/// sessions can neither block others for long nor hide.
pub(crate) async fn sessions_have_short_lock_waits_and_a_tag(store: &Store) {
    if store.backend() == Backend::Sqlite {
        return;
    }
    let store = tagged(store, "s1").await;
    let tag = store.session_tag().unwrap().as_str().to_owned();
    assert!(tag.starts_with("jobs:") && tag.ends_with(":s1"), "{tag}");
    match store.backend() {
        Backend::MySql => {
            let settings =
                scalar(&store, "SELECT CONCAT(@@session.wait_timeout, '/', @@session.innodb_lock_wait_timeout)").await;
            assert_eq!(settings, "60/5");
            let sql = "SELECT tag FROM scheduler_sessions WHERE connection_id = CONNECTION_ID()";
            assert_eq!(scalar(&store, sql).await, tag);
        }
        _ => {
            assert_eq!(scalar(&store, "SHOW lock_timeout").await, "5s");
            assert_eq!(scalar(&store, "SHOW idle_in_transaction_session_timeout").await, "10s");
            assert_eq!(scalar(&store, "SHOW application_name").await, tag);
        }
    }
    store.close().await.unwrap();
}

/// A deposed leader's open transaction holds a row lock, as a frozen process would; the next leader ends that
/// leader's sessions by tag, and then takes the row at once instead of failing after the lock wait.
pub(crate) async fn ending_a_deposed_leaders_sessions_frees_its_locks(store: &Store) {
    if store.backend() == Backend::Sqlite {
        assert_eq!(store.end_sessions("jobs:anything").await.unwrap(), 0);
        return;
    }
    let t = task("locked");
    store.insert_task(&t).await.unwrap();
    let deposed = tagged(store, "s1").await;
    let next = tagged(store, "s2").await;
    let update = format!("UPDATE tasks SET description = 'changed' WHERE id = '{}'", t.id);

    let frozen = deposed.begin().await.unwrap();
    frozen.execute_unprepared(&update).await.unwrap();
    let tag = deposed.session_tag().unwrap().as_str().to_owned();
    assert!(next.end_sessions(&tag).await.unwrap() >= 1);
    // Without the end above, this waits for the lock and fails after 5 s.
    next.connection().execute_unprepared(&update).await.unwrap();

    // A store never ends its own sessions.
    let own = next.session_tag().unwrap().as_str().to_owned();
    assert_eq!(next.end_sessions(&own).await.unwrap(), 0);
    drop(frozen);
    next.close().await.unwrap();
    deposed.close().await.ok();
}
