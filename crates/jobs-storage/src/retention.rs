//! Retention: deleting old final executions with their attempts and log lines, a small batch per call.
//!
//! Every call first selects at most `batch` execution ids (MySQL forbids `LIMIT` in an `IN` subquery), then
//! deletes by id list: log lines and attempts first, the execution rows last, each in short statements of its
//! own, so no lock is held for long and an interrupted batch is finished by the next call.

use jobs_model::{ExecutionStatus, TaskId, Timestamp};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::convert;
use crate::entity::execution::{Column, Entity as Executions};
use crate::entity::execution_attempt::{self, Entity as Attempts};
use crate::entity::execution_log::{self, Entity as Logs};
use crate::{Result, Store};

impl Store {
    /// Deletes up to `batch` final executions that finished before `cutoff`, oldest first, with their attempts
    /// and log lines; returns how many executions it deleted (fewer than `batch`: none are left).
    ///
    /// Age counts from `finished_at`, which every final execution has; pending and running ones never match.
    #[tracing::instrument(skip_all, fields(%cutoff, batch))]
    pub async fn delete_finished_before(&self, cutoff: Timestamp, batch: u64) -> Result<u64> {
        let batch = std::cmp::max(batch, 1);
        let ids: Vec<String> = Executions::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::FinishedAt.lt(cutoff.as_millis()))
            .filter(Column::Status.is_in(final_statuses()))
            .order_by_asc(Column::FinishedAt)
            .limit(batch)
            .into_tuple()
            .all(self.connection())
            .await?;
        self.delete_executions(&ids, batch).await
    }

    /// The tasks with more than `keep` final executions (including tasks deleted since).
    #[tracing::instrument(skip_all, fields(keep))]
    pub async fn tasks_with_more_final_than(&self, keep: u64) -> Result<Vec<TaskId>> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let rows: Vec<String> = Executions::find()
            .select_only()
            .column(Column::TaskId)
            .filter(Column::Status.is_in(final_statuses()))
            .group_by(Column::TaskId)
            .having(Column::Id.count().gt(keep))
            .order_by_asc(Column::TaskId)
            .into_tuple()
            .all(self.connection())
            .await?;
        rows.iter().map(|id| convert::id("executions.task_id", id, TaskId::parse)).collect()
    }

    /// Deletes up to `batch` of the final executions of `task_id` beyond its newest `keep` (newest by id, which is
    /// creation order), with their attempts and log lines; returns how many executions it deleted.
    #[tracing::instrument(skip_all, fields(task_id = %task_id, keep, batch))]
    pub async fn delete_final_beyond_newest(&self, task_id: TaskId, keep: u64, batch: u64) -> Result<u64> {
        let batch = std::cmp::max(batch, 1);
        let ids: Vec<String> = Executions::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::TaskId.eq(task_id.to_string()))
            .filter(Column::Status.is_in(final_statuses()))
            .order_by_desc(Column::Id)
            .offset(keep)
            .limit(batch)
            .into_tuple()
            .all(self.connection())
            .await?;
        self.delete_executions(&ids, batch).await
    }

    /// Deletes the log lines (`batch` per statement), the attempts and then the rows of these executions.
    async fn delete_executions(&self, ids: &[String], batch: u64) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let batch = std::cmp::max(batch, 1);
        // An execution may have thousands of log lines: select their ids a batch at a time, then delete by id.
        loop {
            let lines: Vec<i64> = Logs::find()
                .select_only()
                .column(execution_log::Column::Id)
                .filter(execution_log::Column::ExecutionId.is_in(ids.iter().cloned()))
                .limit(batch)
                .into_tuple()
                .all(self.connection())
                .await?;
            if lines.is_empty() {
                break;
            }
            let selected = lines.len() as u64;
            Logs::delete_many().filter(execution_log::Column::Id.is_in(lines)).exec(self.connection()).await?;
            if selected < batch {
                break;
            }
        }
        Attempts::delete_many()
            .filter(execution_attempt::Column::ExecutionId.is_in(ids.iter().cloned()))
            .exec(self.connection())
            .await?;
        let deleted = Executions::delete_many()
            .filter(Column::Id.is_in(ids.iter().cloned()))
            .filter(Column::Status.is_in(final_statuses()))
            .exec(self.connection())
            .await?;
        Ok(deleted.rows_affected)
    }
}

/// The status words of final executions (never `pending` or `running`).
fn final_statuses() -> impl Iterator<Item = &'static str> {
    ExecutionStatus::ALL.iter().copied().filter(|word| word.parse::<ExecutionStatus>().is_ok_and(|s| s.is_final()))
}
