//! Executor capacity: at most how many executions an executor instance takes at once (NULL: no limit declared).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Executors {
    Table,
    MaxConcurrency,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("executors", "max_concurrency").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Executors::Table)
                    .add_column(ColumnDef::new(Executors::MaxConcurrency).integer().null())
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("executors", "max_concurrency").await? {
            return Ok(());
        }
        manager.alter_table(Table::alter().table(Executors::Table).drop_column(Executors::MaxConcurrency).take()).await
    }
}
