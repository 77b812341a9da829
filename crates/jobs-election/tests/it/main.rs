//! Integration tests of the elections on real MariaDB and PostgreSQL servers (skipped when unreachable, required
//! under `CI=true`): one leader at a time, handover on shutdown and on a killed lock session, long MySQL lock keys.

mod failover;
mod keys;
mod single;
mod support;

/// Expands each `async fn(Backend)` into a module with one `#[tokio::test]` per server backend.
macro_rules! on_servers {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    super::$test(jobs_storage::Backend::MySql).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test(jobs_storage::Backend::Postgres).await;
                }
            }
        )+
    };
}
use on_servers;
