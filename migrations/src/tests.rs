//! The migrations apply, re-apply and roll back on SQLite; the storage suite runs them on MySQL and PostgreSQL.

use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::{MigratorTrait, SchemaManager};

use crate::Migrator;

async fn memory() -> DatabaseConnection {
    let mut options = ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).min_connections(1).sqlx_logging(false);
    Database::connect(options).await.unwrap()
}

const TABLES: &[&str] = &[
    "tasks",
    "executors",
    "executor_tasks",
    "executions",
    "execution_attempts",
    "execution_logs",
    "scheduler_instances",
    "scheduler_leader",
];

#[tokio::test]
async fn up_creates_every_table_and_index() {
    let db = memory().await;
    Migrator::up(&db, None).await.unwrap();
    let manager = SchemaManager::new(&db);
    for table in TABLES {
        assert!(manager.has_table(table).await.unwrap(), "{table}");
    }
    assert!(manager.has_index("executions", "uq_executions_task_fire").await.unwrap());
    assert!(manager.has_index("tasks", "idx_tasks_enabled_next_fire").await.unwrap());
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
}

#[tokio::test]
async fn up_is_idempotent_and_down_drops_everything() {
    let db = memory().await;
    Migrator::up(&db, None).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    Migrator::down(&db, None).await.unwrap();
    let manager = SchemaManager::new(&db);
    for table in TABLES {
        assert!(!manager.has_table(table).await.unwrap(), "{table}");
    }
    Migrator::up(&db, None).await.unwrap();
    assert!(manager.has_table("executions").await.unwrap());
}
