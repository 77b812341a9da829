//! What the console's overview and lists summarise: executions finished per interval, the next fires due, and each
//! task's latest outcomes.

use std::collections::HashMap;

use jobs_model::{ExecutionStatus, Task, TaskId, Timestamp};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value};

use crate::entity::execution::{self, Entity as Executions};
use crate::entity::task::{self, Entity as Tasks};
use crate::{Backend, Result, Store};

/// How many executions ended with `status` in the interval `bucket` (0 is the one starting at `since`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedCount {
    pub bucket: i64,
    pub status: ExecutionStatus,
    pub count: u64,
}

impl Store {
    /// Executions that ended at or after `since`, counted by status per interval of `bucket_millis`.
    #[tracing::instrument(skip(self))]
    pub async fn finished_counts(&self, since: Timestamp, bucket_millis: i64) -> Result<Vec<FinishedCount>> {
        let db = self.connection();
        // Integer division: MySQL's `/` gives a decimal, its `DIV` an integer; elsewhere `/` of integers truncates.
        let (sql, values): (&str, Vec<Value>) = match self.backend() {
            Backend::MySql => (
                "SELECT (finished_at - ?) DIV ? AS bucket, status, COUNT(*) AS n FROM executions \
                 WHERE finished_at >= ? GROUP BY bucket, status",
                vec![since.as_millis().into(), bucket_millis.into(), since.as_millis().into()],
            ),
            Backend::Postgres => (
                "SELECT (finished_at - $1) / $2 AS bucket, status, COUNT(*) AS n FROM executions \
                 WHERE finished_at >= $1 GROUP BY 1, status",
                vec![since.as_millis().into(), bucket_millis.into()],
            ),
            Backend::Sqlite => (
                "SELECT (finished_at - ?1) / ?2 AS bucket, status, COUNT(*) AS n FROM executions \
                 WHERE finished_at >= ?1 GROUP BY 1, status",
                vec![since.as_millis().into(), bucket_millis.into()],
            ),
        };
        let rows = db.query_all_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let bucket: i64 = row.try_get("", "bucket")?;
            let status: String = row.try_get("", "status")?;
            let count: i64 = row.try_get("", "n")?;
            // A status this build does not know (a newer instance wrote it) is left out of the summary.
            let Ok(status) = status.parse() else { continue };
            counts.push(FinishedCount { bucket, status, count: u64::try_from(count).unwrap_or(0) });
        }
        Ok(counts)
    }

    /// The enabled tasks with a next fire, soonest first: at most `limit`.
    pub async fn next_fires(&self, limit: u64) -> Result<Vec<Task>> {
        Tasks::find()
            .filter(task::Column::Enabled.eq(true))
            .filter(task::Column::NextFireAt.is_not_null())
            .order_by_asc(task::Column::NextFireAt)
            .limit(limit)
            .all(self.connection())
            .await?
            .into_iter()
            .map(crate::tasks::from_model)
            .collect()
    }

    /// The statuses of each task's latest `per_task` executions, newest first.
    pub async fn recent_statuses(
        &self,
        tasks: &[TaskId],
        per_task: u64,
    ) -> Result<HashMap<TaskId, Vec<ExecutionStatus>>> {
        let mut recent = HashMap::with_capacity(tasks.len());
        // One short indexed read per task (task, id): a page of a list holds at most a few hundred.
        for task in tasks {
            let statuses: Vec<String> = Executions::find()
                .select_only()
                .column(execution::Column::Status)
                .filter(execution::Column::TaskId.eq(task.to_string()))
                .order_by_desc(execution::Column::Id)
                .limit(per_task)
                .into_tuple()
                .all(self.connection())
                .await?;
            recent.insert(*task, statuses.iter().filter_map(|status| status.parse().ok()).collect());
        }
        Ok(recent)
    }
}
