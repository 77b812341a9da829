//! The first schema: tasks, executors, executions with their attempts and logs, and the scheduler cluster tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    Name,
    Description,
    CronExpression,
    Timezone,
    ExecutionMode,
    LoadBalanceStrategy,
    MaxRetry,
    RetryBackoff,
    TimeoutSeconds,
    MisfirePolicy,
    Parameters,
    Executor,
    Enabled,
    NextFireAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Executors {
    Table,
    Id,
    Name,
    InstanceId,
    BaseUrl,
    HealthCheckUrl,
    Weight,
    Tags,
    Metadata,
    Status,
    StatusReason,
    StatusChangedBy,
    StatusChangedAt,
    Health,
    ConsecutiveFailures,
    ConsecutiveSuccesses,
    LastHeartbeatAt,
    RegisteredAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ExecutorTasks {
    Table,
    ExecutorId,
    TaskName,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Id,
    TaskId,
    TaskName,
    TriggerType,
    Status,
    ScheduledAt,
    FireKey,
    Parameters,
    ExecutorId,
    Attempt,
    Retries,
    RetryAt,
    DeadlineAt,
    Epoch,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
    Result,
    Error,
}

#[derive(DeriveIden)]
enum ExecutionAttempts {
    Table,
    ExecutionId,
    Attempt,
    ExecutorId,
    Status,
    StartedAt,
    FinishedAt,
    Error,
}

#[derive(DeriveIden)]
enum ExecutionLogs {
    Table,
    Id,
    ExecutionId,
    At,
    Message,
}

#[derive(DeriveIden)]
enum SchedulerInstances {
    Table,
    InstanceId,
    Address,
    Role,
    StartedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum SchedulerLeader {
    Table,
    LockKey,
    Epoch,
    LeaderId,
    AcquiredAt,
}

/// Length of an id column: the canonical hyphenated UUID.
const ID_LEN: u32 = 36;
/// Length of names (tasks, executor groups), as `jobs_model::validate::name` allows.
const NAME_LEN: u32 = 128;
/// Length of free-form keys: instance ids, lock keys, addresses.
const KEY_LEN: u32 = 255;
/// Length of status words.
const WORD_LEN: u32 = 32;

/// Column builders that read the same on every backend.
struct Columns {
    backend: DbBackend,
}

impl Columns {
    fn id(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).string_len(ID_LEN).not_null().take()
    }

    fn string(&self, name: impl IntoIden, len: u32) -> ColumnDef {
        ColumnDef::new(name).string_len(len).not_null().take()
    }

    fn string_null(&self, name: impl IntoIden, len: u32) -> ColumnDef {
        ColumnDef::new(name).string_len(len).null().take()
    }

    /// Milliseconds since the Unix epoch, or any other 64-bit number.
    fn millis(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).big_integer().not_null().take()
    }

    fn millis_null(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).big_integer().null().take()
    }

    fn int(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).integer().not_null().take()
    }

    /// Text that may grow large (JSON, results, errors, log lines): MySQL's TEXT stops at 64 KiB.
    fn text(&self, name: impl IntoIden) -> ColumnDef {
        self.text_type(ColumnDef::new(name)).not_null().take()
    }

    fn text_null(&self, name: impl IntoIden) -> ColumnDef {
        self.text_type(ColumnDef::new(name)).null().take()
    }

    fn text_type(&self, mut column: ColumnDef) -> ColumnDef {
        match self.backend {
            DbBackend::MySql => column.custom("mediumtext"),
            _ => column.text(),
        };
        column
    }

    /// A table that compares strings byte for byte on MySQL too, as SQLite and PostgreSQL do.
    fn table(&self, name: impl IntoIden) -> TableCreateStatement {
        let mut table = Table::create();
        table.table(name).if_not_exists();
        if self.backend == DbBackend::MySql {
            table.engine("InnoDB").character_set("utf8mb4").collate("utf8mb4_bin");
        }
        table
    }
}

/// Creates an index unless it exists (MySQL has no `CREATE INDEX IF NOT EXISTS`, so ask first).
pub(crate) async fn create_index(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    if manager.has_index(table, name).await? {
        return Ok(());
    }
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns { backend: manager.get_database_backend() };

        manager
            .create_table(
                c.table(Tasks::Table)
                    .col(c.id(Tasks::Id).primary_key())
                    .col(c.string(Tasks::Name, NAME_LEN))
                    .col(c.text(Tasks::Description))
                    .col(c.text_null(Tasks::CronExpression))
                    .col(c.string(Tasks::Timezone, 64))
                    .col(c.string(Tasks::ExecutionMode, WORD_LEN))
                    .col(c.string(Tasks::LoadBalanceStrategy, 64))
                    .col(c.int(Tasks::MaxRetry))
                    .col(c.text_null(Tasks::RetryBackoff))
                    .col(c.int(Tasks::TimeoutSeconds))
                    .col(c.string(Tasks::MisfirePolicy, WORD_LEN))
                    .col(c.text(Tasks::Parameters))
                    .col(c.string_null(Tasks::Executor, NAME_LEN))
                    .col(ColumnDef::new(Tasks::Enabled).boolean().not_null())
                    .col(c.millis_null(Tasks::NextFireAt))
                    .col(c.millis(Tasks::CreatedAt))
                    .col(c.millis(Tasks::UpdatedAt))
                    .take(),
            )
            .await?;
        create_index(manager, "tasks", "uq_tasks_name", &["name"], true).await?;
        create_index(manager, "tasks", "idx_tasks_enabled_next_fire", &["enabled", "next_fire_at"], false).await?;
        // The leader's planner polls for tasks changed through other instances.
        create_index(manager, "tasks", "idx_tasks_updated_at", &["updated_at"], false).await?;

        manager
            .create_table(
                c.table(Executors::Table)
                    .col(c.id(Executors::Id).primary_key())
                    .col(c.string(Executors::Name, NAME_LEN))
                    .col(c.string(Executors::InstanceId, KEY_LEN))
                    .col(c.text(Executors::BaseUrl))
                    .col(c.text(Executors::HealthCheckUrl))
                    .col(c.int(Executors::Weight))
                    .col(c.text(Executors::Tags))
                    .col(c.text(Executors::Metadata))
                    .col(c.string(Executors::Status, WORD_LEN))
                    .col(c.text_null(Executors::StatusReason))
                    .col(c.string_null(Executors::StatusChangedBy, KEY_LEN))
                    .col(c.millis_null(Executors::StatusChangedAt))
                    .col(c.string(Executors::Health, WORD_LEN))
                    .col(c.int(Executors::ConsecutiveFailures))
                    .col(c.int(Executors::ConsecutiveSuccesses))
                    .col(c.millis_null(Executors::LastHeartbeatAt))
                    .col(c.millis(Executors::RegisteredAt))
                    .col(c.millis(Executors::UpdatedAt))
                    .take(),
            )
            .await?;
        create_index(manager, "executors", "uq_executors_name_instance", &["name", "instance_id"], true).await?;

        manager
            .create_table(
                c.table(ExecutorTasks::Table)
                    .col(c.id(ExecutorTasks::ExecutorId))
                    .col(c.string(ExecutorTasks::TaskName, NAME_LEN))
                    .primary_key(Index::create().col(ExecutorTasks::ExecutorId).col(ExecutorTasks::TaskName))
                    .take(),
            )
            .await?;
        create_index(manager, "executor_tasks", "idx_executor_tasks_task_name", &["task_name"], false).await?;

        manager
            .create_table(
                c.table(Executions::Table)
                    .col(c.id(Executions::Id).primary_key())
                    .col(c.id(Executions::TaskId))
                    .col(c.string(Executions::TaskName, NAME_LEN))
                    .col(c.string(Executions::TriggerType, WORD_LEN))
                    .col(c.string(Executions::Status, WORD_LEN))
                    .col(c.millis(Executions::ScheduledAt))
                    .col(c.millis_null(Executions::FireKey))
                    .col(c.text(Executions::Parameters))
                    .col(c.string_null(Executions::ExecutorId, ID_LEN))
                    .col(c.int(Executions::Attempt))
                    .col(c.int(Executions::Retries))
                    .col(c.millis_null(Executions::RetryAt))
                    .col(c.millis_null(Executions::DeadlineAt))
                    .col(c.millis_null(Executions::Epoch))
                    .col(c.millis(Executions::CreatedAt))
                    .col(c.millis_null(Executions::StartedAt))
                    .col(c.millis_null(Executions::FinishedAt))
                    .col(c.millis(Executions::UpdatedAt))
                    .col(c.text_null(Executions::Result))
                    .col(c.text_null(Executions::Error))
                    .take(),
            )
            .await?;
        // One execution per (task, cron slot): `fire_key` is NULL for manual and retry executions, and NULLs never collide.
        create_index(manager, "executions", "uq_executions_task_fire", &["task_id", "fire_key"], true).await?;
        create_index(manager, "executions", "idx_executions_task_status", &["task_id", "status", "id"], false).await?;
        create_index(manager, "executions", "idx_executions_task", &["task_id", "id"], false).await?;
        create_index(manager, "executions", "idx_executions_status", &["status", "id"], false).await?;
        create_index(manager, "executions", "idx_executions_status_deadline", &["status", "deadline_at"], false)
            .await?;
        create_index(manager, "executions", "idx_executions_executor_status", &["executor_id", "status"], false)
            .await?;
        // Retention deletes final executions by age, oldest first.
        create_index(manager, "executions", "idx_executions_finished_at", &["finished_at"], false).await?;

        manager
            .create_table(
                c.table(ExecutionAttempts::Table)
                    .col(c.id(ExecutionAttempts::ExecutionId))
                    .col(c.int(ExecutionAttempts::Attempt))
                    .col(c.string_null(ExecutionAttempts::ExecutorId, ID_LEN))
                    .col(c.string(ExecutionAttempts::Status, WORD_LEN))
                    .col(c.millis(ExecutionAttempts::StartedAt))
                    .col(c.millis_null(ExecutionAttempts::FinishedAt))
                    .col(c.text_null(ExecutionAttempts::Error))
                    .primary_key(Index::create().col(ExecutionAttempts::ExecutionId).col(ExecutionAttempts::Attempt))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                c.table(ExecutionLogs::Table)
                    .col(ColumnDef::new(ExecutionLogs::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(c.id(ExecutionLogs::ExecutionId))
                    .col(c.millis(ExecutionLogs::At))
                    .col(c.text(ExecutionLogs::Message))
                    .take(),
            )
            .await?;
        create_index(manager, "execution_logs", "idx_execution_logs_execution", &["execution_id", "id"], false).await?;

        manager
            .create_table(
                c.table(SchedulerInstances::Table)
                    .col(c.string(SchedulerInstances::InstanceId, KEY_LEN).primary_key())
                    .col(c.string(SchedulerInstances::Address, KEY_LEN))
                    .col(c.string(SchedulerInstances::Role, WORD_LEN))
                    .col(c.millis(SchedulerInstances::StartedAt))
                    .col(c.millis(SchedulerInstances::LastSeenAt))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                c.table(SchedulerLeader::Table)
                    .col(c.string(SchedulerLeader::LockKey, KEY_LEN).primary_key())
                    .col(c.millis(SchedulerLeader::Epoch))
                    .col(c.string(SchedulerLeader::LeaderId, KEY_LEN))
                    .col(c.millis(SchedulerLeader::AcquiredAt))
                    .take(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "scheduler_leader",
            "scheduler_instances",
            "execution_logs",
            "execution_attempts",
            "executions",
            "executor_tasks",
            "executors",
            "tasks",
        ] {
            manager.drop_table(Table::drop().table(Alias::new(table)).if_exists().take()).await?;
        }
        Ok(())
    }
}
