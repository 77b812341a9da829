//! The `executors` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "executors")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) instance_id: String,
    pub(crate) base_url: String,
    pub(crate) health_check_url: String,
    pub(crate) weight: i32,
    pub(crate) tags: String,
    pub(crate) metadata: String,
    pub(crate) status: String,
    pub(crate) status_reason: Option<String>,
    pub(crate) status_changed_by: Option<String>,
    pub(crate) status_changed_at: Option<i64>,
    pub(crate) health: String,
    pub(crate) consecutive_failures: i32,
    pub(crate) consecutive_successes: i32,
    pub(crate) last_heartbeat_at: Option<i64>,
    pub(crate) registered_at: i64,
    pub(crate) updated_at: i64,
    /// How many milliseconds before a fire's instant the instance accepts it; 0: at the instant.
    pub(crate) early_delivery_ms: i64,
    /// At most how many executions the instance takes at once; NULL: no limit declared.
    pub(crate) max_concurrency: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
