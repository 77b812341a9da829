//! Tests of the PostgreSQL lock session on a real server: taking turns, and the `pg_locks` check for any lock id.

use jobs_storage::Backend;
use jobs_storage::testing::test_store_for;

use crate::campaign::{LockSession, Spec};
use crate::key::postgres_lock_id;
use crate::postgres::PgSession;
use crate::tests::config;
use crate::timing::Timing;

#[tokio::test]
async fn sessions_take_turns() {
    let Some(db) = test_store_for(Backend::Postgres).await else {
        return;
    };
    // Advisory locks are per database, and the database is fresh: any key will do. Check both signs of the id.
    let negative = (0..).map(|n| format!("jobs_leader_{n}")).find(|key| postgres_lock_id(key) < 0).unwrap();
    let positive = (0..).map(|n| format!("jobs_leader_{n}")).find(|key| postgres_lock_id(key) > 0).unwrap();
    for key in [negative, positive] {
        let config = config(&key);
        let timing = Timing::new(&config);
        let options = PgSession::parse(db.url()).unwrap();
        let spec = Spec { key: &config.lock_key, address: "test", timing };
        let mut first = PgSession::open(&options, spec).await.unwrap();
        let mut second = PgSession::open(&options, spec).await.unwrap();
        assert!(!first.holds().await.unwrap(), "{key}");
        assert!(first.acquire().await.unwrap(), "{key}");
        assert!(first.holds().await.unwrap(), "{key}");
        // The second session waits out its `lock_timeout`, then hears no.
        assert!(!second.acquire().await.unwrap(), "{key}");
        assert!(!second.holds().await.unwrap(), "{key}");
        // One release frees the lock: the session held it once.
        assert!(first.release().await.unwrap(), "{key}");
        assert!(!first.holds().await.unwrap(), "{key}");
        assert!(second.acquire().await.unwrap(), "{key}");
        assert!(second.holds().await.unwrap(), "{key}");
        // Closing the session frees its lock.
        second.close().await;
        assert!(first.acquire().await.unwrap(), "{key}");
        first.close().await;
    }
    db.drop().await;
}
