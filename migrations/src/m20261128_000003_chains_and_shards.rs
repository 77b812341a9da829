//! Task chains and broadcast shards: the tasks a task triggers when it ends (`tasks.on_success`, `tasks.on_failure`,
//! JSON arrays of task names), the execution that triggered a chained one (`executions.upstream_execution_id`), and
//! the fire a broadcast execution belongs to with its shard (`executions.fire_id`, `shard_index`, `shard_total`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    OnSuccess,
    OnFailure,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    UpstreamExecutionId,
    FireId,
    ShardIndex,
    ShardTotal,
}

const UPSTREAM_INDEX: &str = "idx_executions_upstream";
const FIRE_INDEX: &str = "idx_executions_fire";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        let columns = [
            ("tasks", Tasks::Table.into_iden(), ColumnDef::new(Tasks::OnSuccess).text().null().take()),
            ("tasks", Tasks::Table.into_iden(), ColumnDef::new(Tasks::OnFailure).text().null().take()),
            (
                "executions",
                Executions::Table.into_iden(),
                ColumnDef::new(Executions::UpstreamExecutionId).string_len(36).null().take(),
            ),
            (
                "executions",
                Executions::Table.into_iden(),
                ColumnDef::new(Executions::FireId).string_len(36).null().take(),
            ),
            (
                "executions",
                Executions::Table.into_iden(),
                ColumnDef::new(Executions::ShardIndex).integer().null().take(),
            ),
            (
                "executions",
                Executions::Table.into_iden(),
                ColumnDef::new(Executions::ShardTotal).integer().null().take(),
            ),
        ];
        for (table_name, table, mut column) in columns {
            let name = column.get_column_name();
            if manager.has_column(table_name, &name).await? {
                continue;
            }
            manager.alter_table(Table::alter().table(table).add_column(&mut column).take()).await?;
        }
        for (index, column) in [(UPSTREAM_INDEX, Executions::UpstreamExecutionId), (FIRE_INDEX, Executions::FireId)] {
            if !manager.has_index("executions", index).await? {
                manager.create_index(Index::create().name(index).table(Executions::Table).col(column).take()).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [UPSTREAM_INDEX, FIRE_INDEX] {
            if manager.has_index("executions", index).await? {
                manager.drop_index(Index::drop().name(index).table(Executions::Table).to_owned()).await?;
            }
        }
        let columns = [
            ("tasks", Tasks::Table.into_iden(), Tasks::OnSuccess.into_iden()),
            ("tasks", Tasks::Table.into_iden(), Tasks::OnFailure.into_iden()),
            ("executions", Executions::Table.into_iden(), Executions::UpstreamExecutionId.into_iden()),
            ("executions", Executions::Table.into_iden(), Executions::FireId.into_iden()),
            ("executions", Executions::Table.into_iden(), Executions::ShardIndex.into_iden()),
            ("executions", Executions::Table.into_iden(), Executions::ShardTotal.into_iden()),
        ];
        for (table_name, table, column) in columns {
            if manager.has_column(table_name, &column.to_string()).await? {
                manager.alter_table(Table::alter().table(table).drop_column(column).take()).await?;
            }
        }
        Ok(())
    }
}
