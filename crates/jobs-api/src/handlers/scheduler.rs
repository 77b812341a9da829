//! `GET /api/v1/scheduler/status`: this instance, the leader and every live instance.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use jobs_model::Timestamp;

use crate::{ApiError, AppState};

/// This instance, the current leader and every live instance.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SchedulerStatus)]
pub(crate) struct Status {
    instance_id: String,
    /// `leader` or `follower`.
    #[schema(example = "leader")]
    role: &'static str,
    is_leader: bool,
    started_at: Timestamp,
    leader: Option<Leader>,
    instances: Vec<Instance>,
}

/// The instance that holds the leader lock, and since when.
#[derive(Debug, Serialize, ToSchema)]
struct Leader {
    instance_id: String,
    epoch: i64,
    since: Timestamp,
}

/// A scheduler instance that reported recently.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SchedulerInstance)]
struct Instance {
    instance_id: String,
    address: String,
    role: &'static str,
    started_at: Timestamp,
    last_seen_at: Timestamp,
}

/// The cluster as this instance sees it.
#[utoipa::path(
    get,
    path = "/api/v1/scheduler/status",
    operation_id = "scheduler_status",
    tag = "scheduler",
    responses((status = 200, description = "the cluster", body = Status)),
    security(("bearer" = [])),
)]
pub(crate) async fn status(State(state): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    let status = state.engine.cluster_status().await?;
    let leader = match (status.leader_id, status.leader_epoch, status.leader_since) {
        (Some(instance_id), Some(epoch), Some(since)) => Some(Leader { instance_id, epoch, since }),
        _ => None,
    };
    Ok(axum::Json(Status {
        instance_id: status.instance_id,
        role: status.role.as_str(),
        is_leader: status.role.is_leader(),
        started_at: status.started_at,
        leader,
        instances: status
            .instances
            .into_iter()
            .map(|instance| Instance {
                instance_id: instance.instance_id,
                address: instance.address,
                role: instance.role.as_str(),
                started_at: instance.started_at,
                last_seen_at: instance.last_seen_at,
            })
            .collect(),
    }))
}
