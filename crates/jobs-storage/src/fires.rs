//! Planning writes: a batch of cron fires (execution rows plus each task's advanced next fire) in one transaction.
//!
//! Two guards make a fire land at most once: a task's `next_fire_at` must still be what the planner read, and
//! the unique `(task_id, fire_key)` key drops an execution for a slot that someone else already wrote.

use std::collections::{BTreeMap, HashMap, HashSet};

use jobs_model::{Execution, ExecutionId, TaskId, Timestamp};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};

use crate::entity::execution::{self, Entity as Executions};
use crate::entity::scheduler_leader::Entity as Leader;
use crate::entity::task::{self, Entity as Tasks};
use crate::{Error, Result, Store};

/// Rows per multi-row INSERT (18 parameters each), and ids per `IN (…)` list.
const ROWS_PER_STATEMENT: usize = 500;

/// One task's fires from one planning step.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFire {
    pub task_id: TaskId,
    /// The task's `next_fire_at` the planner read; the fire is dropped if it changed meanwhile.
    pub expected_next: Option<Timestamp>,
    /// The task's `next_fire_at` after these fires; `None` when its schedule has ended, which disables the task.
    pub new_next: Option<Timestamp>,
    /// The executions of the fired slots (`pending`, or `skipped`/`missed`).
    pub executions: Vec<Execution>,
}

impl Store {
    /// Writes a batch of fires in one transaction and returns the ids of the executions actually inserted.
    ///
    /// With an `epoch`, the batch only applies while `scheduler_leader[lock_key]` still has it (else `Deposed`).
    /// A fire whose task changed (or vanished) since planning is skipped; an execution whose slot is already
    /// stored is left out.
    #[tracing::instrument(skip_all, fields(epoch, fires = fires.len()))]
    pub async fn record_fires(
        &self,
        epoch: Option<i64>,
        lock_key: &str,
        fires: &[PlannedFire],
    ) -> Result<Vec<ExecutionId>> {
        let txn = self.begin().await?;
        if let Some(expected) = epoch {
            // Locking the leader row makes a concurrent `bump_epoch` wait for this batch (or this batch fail).
            let current = Leader::find_by_id(lock_key).lock_exclusive().one(&txn).await?.map(|row| row.epoch);
            if current != Some(expected) {
                txn.rollback().await?;
                return Err(Error::Deposed { lock_key: lock_key.to_owned(), expected, current });
            }
        }
        let mut next_fire = lock_tasks(&txn, fires).await?;

        // Apply the fires in order, so that two fires of one task in a batch chain their guards.
        let mut accepted: Vec<&Execution> = Vec::new();
        let mut changed: HashSet<String> = HashSet::new();
        for fire in fires {
            let id = fire.task_id.to_string();
            let Some(current) = next_fire.get_mut(&id) else {
                tracing::debug!(task_id = %fire.task_id, "task vanished before its fire was written");
                continue;
            };
            if *current != fire.expected_next.map(Timestamp::as_millis) {
                tracing::debug!(task_id = %fire.task_id, "task changed before its fire was written");
                continue;
            }
            *current = fire.new_next.map(Timestamp::as_millis);
            changed.insert(id);
            accepted.extend(&fire.executions);
        }

        // The rows are locked (SQLite: the whole database is), so plain updates suffice: one per chunk of tasks.
        let mut ended: Vec<String> = Vec::new();
        let mut moved: BTreeMap<String, i64> = BTreeMap::new();
        for id in changed {
            match next_fire.get(&id).copied().flatten() {
                Some(next) => {
                    moved.insert(id, next);
                }
                None => ended.push(id),
            }
        }
        for chunk in ended.chunks(ROWS_PER_STATEMENT) {
            // The schedule has ended (an `@at` task fired): the task is disabled and kept for its history.
            Tasks::update_many()
                .col_expr(task::Column::NextFireAt, Expr::value(Option::<i64>::None))
                .col_expr(task::Column::Enabled, Expr::value(false))
                .filter(task::Column::Id.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        let moved: Vec<(String, i64)> = moved.into_iter().collect();
        for chunk in moved.chunks(ROWS_PER_STATEMENT) {
            Tasks::update_many()
                .col_expr(task::Column::NextFireAt, next_fire_values(chunk))
                .filter(task::Column::Id.is_in(chunk.iter().map(|(id, _)| id.clone())))
                .exec(&txn)
                .await?;
        }

        let mut inserted = Vec::with_capacity(accepted.len());
        for chunk in accepted.chunks(ROWS_PER_STATEMENT) {
            inserted.extend(insert_new(&txn, chunk, epoch).await?);
        }
        txn.commit().await?;
        Ok(inserted)
    }
}

/// The new `next_fire_at` of each task of `chunk`: the value itself when they share one (the common case: tasks
/// on the same schedule), else `CASE id WHEN … THEN … END`, so that a batch costs one statement per chunk
/// whatever the number of distinct values.
fn next_fire_values(chunk: &[(String, i64)]) -> Expr {
    let first = chunk.first().map_or(0, |(_, next)| *next);
    if chunk.iter().all(|(_, next)| *next == first) {
        return Expr::value(first);
    }
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for (id, next) in chunk {
        case = case.case(task::Column::Id.eq(id.clone()), Expr::value(*next));
    }
    case.finally(Expr::col(task::Column::NextFireAt)).into()
}

/// Reads (and on MySQL/PostgreSQL row-locks) the current `next_fire_at` of the tasks in `fires`.
async fn lock_tasks(txn: &DatabaseTransaction, fires: &[PlannedFire]) -> Result<HashMap<String, Option<i64>>> {
    let mut ids: Vec<String> = fires.iter().map(|fire| fire.task_id.to_string()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut next_fire = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<(String, Option<i64>)> = Tasks::find()
            .select_only()
            .column(task::Column::Id)
            .column(task::Column::NextFireAt)
            .filter(task::Column::Id.is_in(chunk.iter().cloned()))
            .order_by_asc(task::Column::Id)
            .lock_exclusive()
            .into_tuple()
            .all(txn)
            .await?;
        next_fire.extend(rows);
    }
    Ok(next_fire)
}

/// Inserts executions, skipping those whose `(task_id, fire_key)` is taken; returns the ids that went in.
async fn insert_new(
    txn: &DatabaseTransaction,
    executions: &[&Execution],
    epoch: Option<i64>,
) -> Result<Vec<ExecutionId>> {
    if executions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = executions
        .iter()
        .map(|execution| crate::executions::to_active(execution, epoch))
        .collect::<Result<Vec<_>>>()?;
    let backend = txn.get_database_backend();
    let mut insert = Executions::insert_many(rows).into_query();
    if backend != DbBackend::MySql {
        insert.on_conflict(OnConflict::new().do_nothing().to_owned()).returning_col(execution::Column::Id);
        let mut inserted = HashSet::with_capacity(executions.len());
        for row in txn.query_all(&insert).await? {
            inserted.insert(row.try_get::<String>("", "id")?);
        }
        return Ok(executions
            .iter()
            .map(|execution| execution.id)
            .filter(|id| inserted.contains(&id.to_string()))
            .collect());
    }
    // MySQL has neither `ON CONFLICT … DO NOTHING` nor `RETURNING`; `INSERT IGNORE` counts the rows it inserted.
    let mut statement = backend.build(&insert);
    statement.sql = statement.sql.replacen("INSERT ", "INSERT IGNORE ", 1);
    let affected = txn.execute_raw(statement).await?.rows_affected();
    let ids: Vec<ExecutionId> = executions.iter().map(|execution| execution.id).collect();
    if usize::try_from(affected).is_ok_and(|affected| affected == ids.len()) {
        return Ok(ids);
    }
    // Some slots were taken: the executions present under their (fresh, UUIDv7) ids now are the ones inserted.
    let present: HashSet<String> = Executions::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::Id.is_in(ids.iter().map(ToString::to_string)))
        .into_tuple::<String>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let skipped: Vec<&Execution> =
        executions.iter().copied().filter(|execution| !present.contains(&execution.id.to_string())).collect();
    ensure_slots_taken(txn, &skipped).await?;
    Ok(ids.into_iter().filter(|id| present.contains(&id.to_string())).collect())
}

/// `INSERT IGNORE` also skips rows for errors other than a taken slot (a value the column refuses, a foreign
/// key): each execution it skipped must have its slot held by another row, or the whole write fails, so that no
/// fire is lost while its task's `next_fire_at` moves on.
async fn ensure_slots_taken(txn: &DatabaseTransaction, skipped: &[&Execution]) -> Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    let mut slots: Vec<(String, i64)> = Vec::with_capacity(skipped.len());
    for execution in skipped {
        let Some(fire_key) = crate::executions::fire_key(execution) else {
            return Err(Error::Unavailable(format!(
                "execution {} of task {} was not written, and no slot explains it",
                execution.id, execution.task_id
            )));
        };
        slots.push((execution.task_id.to_string(), fire_key));
    }
    let tasks: HashSet<&str> = slots.iter().map(|(task, _)| task.as_str()).collect();
    let keys: HashSet<i64> = slots.iter().map(|(_, key)| *key).collect();
    let taken: HashSet<(String, i64)> = Executions::find()
        .select_only()
        .column(execution::Column::TaskId)
        .column(execution::Column::FireKey)
        .filter(execution::Column::TaskId.is_in(tasks.iter().map(|task| (*task).to_owned())))
        .filter(execution::Column::FireKey.is_in(keys.iter().copied()))
        .into_tuple::<(String, Option<i64>)>()
        .all(txn)
        .await?
        .into_iter()
        .filter_map(|(task, key)| key.map(|key| (task, key)))
        .collect();
    match slots.iter().find(|slot| !taken.contains(*slot)) {
        None => Ok(()),
        Some((task, key)) => Err(Error::Unavailable(format!(
            "a fire of task {task} for slot {key} was refused by the database and not written; the plan is kept \
             for the next try"
        ))),
    }
}
