//! The `executions` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) task_id: String,
    pub(crate) task_name: String,
    pub(crate) trigger_type: String,
    pub(crate) status: String,
    pub(crate) scheduled_at: i64,
    /// `scheduled_at` for cron fires, NULL otherwise: unique together with `task_id`.
    pub(crate) fire_key: Option<i64>,
    pub(crate) parameters: String,
    pub(crate) executor_id: Option<String>,
    pub(crate) attempt: i32,
    pub(crate) retries: i32,
    pub(crate) retry_at: Option<i64>,
    pub(crate) deadline_at: Option<i64>,
    /// The leader epoch that planned it, if any.
    pub(crate) epoch: Option<i64>,
    /// Misfired slots this execution accounts for.
    pub(crate) missed_slots: i32,
    pub(crate) created_at: i64,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) updated_at: i64,
    pub(crate) result: Option<String>,
    pub(crate) error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
