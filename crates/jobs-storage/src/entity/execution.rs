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
    /// `scheduled_at` for cron fires (of a broadcast fire, its first shard's), NULL otherwise: unique together with
    /// `task_id`.
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
    /// The execution whose end triggered this one (trigger type `chain`).
    pub(crate) upstream_execution_id: Option<String>,
    /// The broadcast fire this execution is one shard of, with its shard.
    pub(crate) fire_id: Option<String>,
    pub(crate) shard_index: Option<i32>,
    pub(crate) shard_total: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {
    /// Used for joins only: the schema keeps no foreign key, since an execution outlives its task.
    #[sea_orm(belongs_to = "super::task::Entity", from = "Column::TaskId", to = "super::task::Column::Id")]
    Task,
}

impl ActiveModelBehavior for ActiveModel {}
