//! Per task `max_catchup` (NULL: every late slot within the misfire grace is fired), and an index on executions'
//! `(finished_at, status)` for the overview's counts of the last hour.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_create_tables::create_index;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    MaxCatchup,
}

const INDEX: &str = "idx_executions_finished_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("tasks", "max_catchup").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .add_column(ColumnDef::new(Tasks::MaxCatchup).integer().null())
                        .take(),
                )
                .await?;
        }
        create_index(manager, "executions", INDEX, &["finished_at", "status"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_index("executions", INDEX).await? {
            manager.drop_index(Index::drop().name(INDEX).table(Alias::new("executions")).to_owned()).await?;
        }
        if manager.has_column("tasks", "max_catchup").await? {
            manager.alter_table(Table::alter().table(Tasks::Table).drop_column(Tasks::MaxCatchup).take()).await?;
        }
        Ok(())
    }
}
