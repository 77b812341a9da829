//! Early delivery: how many milliseconds before a fire's instant an executor instance accepts it (0: none).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Executors {
    Table,
    EarlyDeliveryMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("executors", "early_delivery_ms").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Executors::Table)
                    .add_column(ColumnDef::new(Executors::EarlyDeliveryMs).big_integer().not_null().default(0))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("executors", "early_delivery_ms").await? {
            return Ok(());
        }
        manager.alter_table(Table::alter().table(Executors::Table).drop_column(Executors::EarlyDeliveryMs).take()).await
    }
}
