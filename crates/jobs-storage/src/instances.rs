//! Scheduler instances of the cluster and the leader record with its epoch.

use jobs_model::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::scheduler_instance::{self, Entity as Instances};
use crate::entity::scheduler_leader::{self, Entity as Leader};
use crate::error::is_race;
use crate::{Error, Result, Store};

/// One scheduler process, as shown by `GET /api/v1/scheduler/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerInstance {
    pub instance_id: String,
    /// Where its API listens.
    pub address: String,
    /// `leader` or `follower`.
    pub role: String,
    pub started_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// Who leads under one lock key, since when, and with which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRecord {
    pub instance_id: String,
    pub epoch: i64,
    pub acquired_at: Timestamp,
    /// How that leader's database sessions are tagged, if it tagged them.
    pub session_tag: Option<String>,
}

impl Store {
    /// Creates or refreshes an instance's row.
    pub async fn upsert_instance(&self, instance: &SchedulerInstance) -> Result<()> {
        let row = scheduler_instance::ActiveModel {
            instance_id: Set(instance.instance_id.clone()),
            address: Set(instance.address.clone()),
            role: Set(instance.role.clone()),
            started_at: Set(instance.started_at.as_millis()),
            last_seen_at: Set(instance.last_seen_at.as_millis()),
        };
        let upsert = OnConflict::column(scheduler_instance::Column::InstanceId)
            .update_columns([
                scheduler_instance::Column::Address,
                scheduler_instance::Column::Role,
                scheduler_instance::Column::StartedAt,
                scheduler_instance::Column::LastSeenAt,
            ])
            .to_owned();
        Instances::insert(row).on_conflict(upsert).exec_without_returning(self.connection()).await?;
        Ok(())
    }

    /// Every known instance, by id.
    pub async fn list_instances(&self) -> Result<Vec<SchedulerInstance>> {
        let rows =
            Instances::find().order_by_asc(scheduler_instance::Column::InstanceId).all(self.connection()).await?;
        Ok(rows
            .into_iter()
            .map(|row| SchedulerInstance {
                instance_id: row.instance_id,
                address: row.address,
                role: row.role,
                started_at: Timestamp::from_millis(row.started_at),
                last_seen_at: Timestamp::from_millis(row.last_seen_at),
            })
            .collect())
    }

    pub async fn delete_instance(&self, instance_id: &str) -> Result<()> {
        Instances::delete_by_id(instance_id).exec(self.connection()).await?;
        Ok(())
    }

    /// Records that `instance_id` now leads under `lock_key` and returns the new epoch (1 for the first leader).
    #[tracing::instrument(skip_all, fields(lock_key, instance_id))]
    pub async fn bump_epoch(&self, lock_key: &str, instance_id: &str, at: Timestamp) -> Result<i64> {
        match self.try_bump_epoch(lock_key, instance_id, at).await {
            // The first two leaders raced to insert the row: the second increments it instead.
            Err(err) if is_race(&err) => self.try_bump_epoch(lock_key, instance_id, at).await,
            other => other,
        }
    }

    async fn try_bump_epoch(&self, lock_key: &str, instance_id: &str, at: Timestamp) -> Result<i64> {
        let txn = self.begin().await?;
        let updated = Leader::update_many()
            .col_expr(scheduler_leader::Column::Epoch, Expr::col(scheduler_leader::Column::Epoch).add(1))
            .col_expr(scheduler_leader::Column::LeaderId, Expr::value(instance_id))
            .col_expr(scheduler_leader::Column::AcquiredAt, Expr::value(at.as_millis()))
            .col_expr(scheduler_leader::Column::SessionTag, Expr::value(self.tag_text()))
            .filter(scheduler_leader::Column::LockKey.eq(lock_key))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            let row = scheduler_leader::ActiveModel {
                lock_key: Set(lock_key.to_owned()),
                epoch: Set(1),
                leader_id: Set(instance_id.to_owned()),
                acquired_at: Set(at.as_millis()),
                session_tag: Set(self.tag_text()),
            };
            Leader::insert(row).exec_without_returning(&txn).await?;
        }
        let epoch = Leader::find_by_id(lock_key).one(&txn).await?.map(|row| row.epoch);
        txn.commit().await?;
        epoch.ok_or_else(|| Error::NotFound(format!("leader record `{lock_key}` vanished")))
    }

    /// The current leader record under `lock_key`, if anyone ever led.
    pub async fn leader(&self, lock_key: &str) -> Result<Option<LeaderRecord>> {
        let row = Leader::find_by_id(lock_key).one(self.connection()).await?;
        Ok(row.map(|row| LeaderRecord {
            instance_id: row.leader_id,
            epoch: row.epoch,
            acquired_at: Timestamp::from_millis(row.acquired_at),
            session_tag: row.session_tag,
        }))
    }

    /// Clears `tag` from the leader record under `lock_key` (if it is still there): a leader that steps down
    /// cleanly leaves no sessions for the next one to end.
    pub async fn forget_session_tag(&self, lock_key: &str, tag: &str) -> Result<()> {
        Leader::update_many()
            .col_expr(scheduler_leader::Column::SessionTag, Expr::value(Option::<String>::None))
            .filter(scheduler_leader::Column::LockKey.eq(lock_key))
            .filter(scheduler_leader::Column::SessionTag.eq(tag))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    fn tag_text(&self) -> Option<String> {
        self.session_tag().map(|tag| tag.as_str().to_owned())
    }
}
