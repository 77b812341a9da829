//! The `scheduler_leader` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduler_leader")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) lock_key: String,
    pub(crate) epoch: i64,
    pub(crate) leader_id: String,
    pub(crate) acquired_at: i64,
    /// How the leader's database sessions are tagged, so that the next leader can end them.
    pub(crate) session_tag: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
