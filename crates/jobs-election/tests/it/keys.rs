//! Lock keys: longer than MySQL's 64 characters, and empty.

use sea_orm::{ConnectionTrait, Statement, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use jobs_election::{ElectionConfig, Lease, Role, for_store, mysql_lock_name};
use jobs_model::ErrorKind;
use jobs_storage::Backend;
use jobs_storage::testing::test_store_for;

use crate::on_servers;
use crate::support::{HEARTBEAT, Node, leader_and_follower, lock_key};

on_servers!(a_long_lock_key_works, an_empty_lock_key_is_a_config_error);

async fn a_long_lock_key_works(backend: Backend) {
    let Some(db) = test_store_for(backend).await else {
        return;
    };
    let key = format!("{}_{}", lock_key(&db), "x".repeat(80));
    assert!(key.chars().count() > 64);
    let (leader, follower) = leader_and_follower(Node::start(&db, "a", &key), Node::start(&db, "b", &key)).await;
    let epoch = leader.role().epoch().unwrap();
    // The epoch is recorded under the whole key, which is what planning writes carry.
    assert_eq!(db.store().leader(&key).await.unwrap().unwrap().epoch, epoch);
    if backend == Backend::MySql {
        // The server knows the lock under its shortened name, held by one session.
        let name = mysql_lock_name(&key).into_owned();
        assert_eq!(name.chars().count(), 64);
        let conn = db.store().connection();
        let sql = "SELECT CAST(IS_USED_LOCK(?) AS SIGNED) AS holder";
        let values: [Value; 1] = [name.into()];
        let statement = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
        let row = conn.query_one_raw(statement).await.unwrap().unwrap();
        assert!(row.try_get::<Option<i64>>("", "holder").unwrap().is_some(), "nobody holds the shortened lock");
    }
    let stopping = Instant::now();
    leader.stop().await;
    crate::support::wait_until("the follower leads", stopping, stopping + HEARTBEAT, || follower.role().is_leader())
        .await;
    assert!(follower.role().epoch().unwrap() > epoch);
    follower.stop().await;
    db.drop().await;
}

async fn an_empty_lock_key_is_a_config_error(backend: Backend) {
    let Some(db) = test_store_for(backend).await else {
        return;
    };
    let config = ElectionConfig {
        instance_id: "a".to_owned(),
        lock_key: String::new(),
        lock_timeout: jobs_model::Duration::from_secs(3),
        heartbeat_interval: jobs_model::Duration(HEARTBEAT),
    };
    let election = for_store(db.store(), db.url(), config, Lease::default());
    let (role, _role) = watch::channel(Role::Follower);
    let (_shutdown, shutdown) = watch::channel(false);
    let err = election.run(role, shutdown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("scheduler.lock_key"), "{err}");
    db.drop().await;
}
