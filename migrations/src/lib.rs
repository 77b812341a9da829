//! The database schema of `jobs` as sea-orm migrations, run by the scheduler at start and by `cargo xtask migrate`.
//!
//! Every migration runs unchanged on SQLite, MySQL/MariaDB and PostgreSQL:
//! instants are BIGINT milliseconds, ids are 36-character UUID strings and JSON lives in text columns.

mod m20261124_000001_create_tables;
mod m20261128_000001_early_delivery;
mod m20261128_000002_sessions;
mod m20261128_000003_chains_and_shards;
mod m20261207_000001_executor_capacity;
mod m20261207_000002_catchup_and_overview;

pub use sea_orm_migration::MigratorTrait;
/// The sea-orm this schema is written with, so that `xtask` can connect to run migrations and benchmark queries
/// without naming sea-orm itself.
pub use sea_orm_migration::sea_orm;
use sea_orm_migration::{MigrationTrait, async_trait};

/// Every migration of `jobs`, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tables::Migration),
            Box::new(m20261128_000001_early_delivery::Migration),
            Box::new(m20261128_000002_sessions::Migration),
            Box::new(m20261128_000003_chains_and_shards::Migration),
            Box::new(m20261207_000001_executor_capacity::Migration),
            Box::new(m20261207_000002_catchup_and_overview::Migration),
        ]
    }
}

#[cfg(test)]
mod tests;
