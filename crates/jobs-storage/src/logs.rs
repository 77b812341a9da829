//! Execution log lines: appended in multi-row inserts, read back in order by their auto-increment sequence.

use jobs_model::{ExecutionId, LogLine, Timestamp};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::execution_log::{self, Column, Entity as Logs};
use crate::{Result, Store};

/// Rows per INSERT statement, well below every backend's limit on bound parameters.
const LINES_PER_INSERT: usize = 1000;

impl Store {
    /// Appends lines to an execution's log, all stamped `at`.
    #[tracing::instrument(skip_all, fields(execution_id = %id, lines = lines.len()))]
    pub async fn append_logs(&self, id: ExecutionId, lines: &[String], at: Timestamp) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        if lines.len() <= LINES_PER_INSERT {
            return insert_logs_in(self.connection(), &[(id, lines, at)]).await;
        }
        let txn = self.begin().await?;
        insert_logs_in(&txn, &[(id, lines, at)]).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Up to `limit` (0: all) log lines after sequence number `after_seq`, in order.
    pub async fn logs(&self, id: ExecutionId, after_seq: Option<i64>, limit: u64) -> Result<Vec<LogLine>> {
        let mut query = Logs::find().filter(Column::ExecutionId.eq(id.to_string())).order_by_asc(Column::Id);
        if let Some(after) = after_seq {
            query = query.filter(Column::Id.gt(after));
        }
        if limit > 0 {
            query = query.limit(limit);
        }
        let rows = query.all(self.connection()).await?;
        Ok(rows
            .into_iter()
            .map(|row| LogLine { seq: row.id, at: Timestamp::from_millis(row.at), message: row.message })
            .collect())
    }
}

/// Inserts the lines of several executions' logs, each set stamped with its instant, on `conn` (a transaction, when
/// they must land with something else).
pub(crate) async fn insert_logs_in(
    conn: &impl ConnectionTrait,
    logs: &[(ExecutionId, &[String], Timestamp)],
) -> Result<()> {
    let rows: Vec<execution_log::ActiveModel> = logs
        .iter()
        .flat_map(|(id, lines, at)| {
            let execution_id = id.to_string();
            lines.iter().map(move |message| execution_log::ActiveModel {
                id: NotSet,
                execution_id: Set(execution_id.clone()),
                at: Set(at.as_millis()),
                message: Set(message.clone()),
            })
        })
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(LINES_PER_INSERT).collect();
        Logs::insert_many(chunk).exec_without_returning(conn).await?;
    }
    Ok(())
}
