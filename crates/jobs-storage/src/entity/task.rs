//! The `tasks` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) cron_expression: Option<String>,
    pub(crate) timezone: String,
    pub(crate) execution_mode: String,
    pub(crate) load_balance_strategy: String,
    pub(crate) max_retry: i32,
    pub(crate) retry_backoff: Option<String>,
    pub(crate) timeout_seconds: i32,
    pub(crate) misfire_policy: String,
    pub(crate) max_catchup: Option<i32>,
    pub(crate) parameters: String,
    pub(crate) executor: Option<String>,
    pub(crate) enabled: bool,
    /// JSON arrays of task names; NULL when empty.
    pub(crate) on_success: Option<String>,
    pub(crate) on_failure: Option<String>,
    pub(crate) next_fire_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
