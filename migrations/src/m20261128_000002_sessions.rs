//! Faults: the session tag of each leader (so that the next one can end a deposed leader's sessions), the MySQL
//! sessions of each tag (MySQL shows no client-set name to other sessions), and the slots a catch-up fire stands for.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum SchedulerLeader {
    Table,
    SessionTag,
}

#[derive(DeriveIden)]
enum SchedulerSessions {
    Table,
    ConnectionId,
    Host,
    Tag,
    OpenedAt,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    MissedSlots,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("scheduler_leader", "session_tag").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(SchedulerLeader::Table)
                        .add_column(ColumnDef::new(SchedulerLeader::SessionTag).string_len(64).null())
                        .take(),
                )
                .await?;
        }
        if !manager.has_column("executions", "missed_slots").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Executions::Table)
                        .add_column(ColumnDef::new(Executions::MissedSlots).integer().not_null().default(0))
                        .take(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SchedulerSessions::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SchedulerSessions::ConnectionId).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(SchedulerSessions::Host).string_len(255).not_null())
                    .col(ColumnDef::new(SchedulerSessions::Tag).string_len(64).not_null())
                    .col(ColumnDef::new(SchedulerSessions::OpenedAt).big_integer().not_null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_scheduler_sessions_tag")
                    .table(SchedulerSessions::Table)
                    .col(SchedulerSessions::Tag)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SchedulerSessions::Table).if_exists().take()).await?;
        if manager.has_column("executions", "missed_slots").await? {
            manager
                .alter_table(Table::alter().table(Executions::Table).drop_column(Executions::MissedSlots).take())
                .await?;
        }
        if manager.has_column("scheduler_leader", "session_tag").await? {
            manager
                .alter_table(
                    Table::alter().table(SchedulerLeader::Table).drop_column(SchedulerLeader::SessionTag).take(),
                )
                .await?;
        }
        Ok(())
    }
}
