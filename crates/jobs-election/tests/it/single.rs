//! `for_store` on SQLite: a single node that leads at once with a lease that holds until shutdown.

use tokio::time::Instant;

use jobs_storage::Backend;
use jobs_storage::testing::test_store_for;

use crate::support::{Node, STARTUP, wait_until};

#[tokio::test]
async fn sqlite_is_a_single_node_leader() {
    let Some(db) = test_store_for(Backend::Sqlite).await else {
        return;
    };
    let node = Node::start(&db, "solo", "jobs_leader_solo");
    let start = Instant::now();
    wait_until("the single node leads", start, start + STARTUP, || node.role().is_leader()).await;
    assert_eq!(node.role().epoch(), Some(1));
    assert!(node.lease.is_valid());
    assert_eq!(db.store().leader("jobs_leader_solo").await.unwrap().unwrap().instance_id, "solo");
    node.stop().await;
    db.drop().await;
}
