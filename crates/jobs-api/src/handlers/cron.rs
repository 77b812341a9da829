//! `GET /api/v1/cron/preview`: the next fire times exactly as the planner computes them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use jobs_cron::Schedule;
use jobs_model::Timestamp;

use crate::ApiError;
use crate::error::ErrorBody;
use crate::extract::Query;

const MAX_COUNT: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// A cron expression as a task takes it.
    #[param(example = "0 30 9 * * 1-5")]
    expression: String,
    /// An IANA time zone name (default `UTC`).
    #[param(example = "Europe/Berlin")]
    timezone: Option<String>,
    /// How many fire times, 1 to 1000 (default 10).
    #[param(minimum = 1, maximum = 1000)]
    count: Option<usize>,
    /// List fire times after this instant (RFC 3339; default now).
    #[param(format = DateTime)]
    from: Option<String>,
}

/// The next fire times of a cron expression.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CronPreview)]
pub(crate) struct Preview {
    expression: String,
    timezone: String,
    from: Timestamp,
    /// RFC 3339 with the time zone's offset at each fire; fewer than `count` when the schedule ends.
    fire_times: Vec<String>,
}

/// The next `count` fire times after `from`, exactly as the planner will fire them.
#[utoipa::path(
    get,
    path = "/api/v1/cron/preview",
    operation_id = "cron_preview",
    tag = "cron",
    params(PreviewQuery),
    responses(
        (status = 200, description = "the fire times", body = Preview),
        (status = 400, description = "invalid expression, time zone, count or time", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn preview(Query(query): Query<PreviewQuery>) -> Result<axum::Json<Preview>, ApiError> {
    let timezone = query.timezone.unwrap_or_else(|| "UTC".to_owned());
    let count = query.count.unwrap_or(10);
    if count == 0 || count > MAX_COUNT {
        return Err(ApiError::invalid(format!("invalid `count`: {count} is out of range 1..={MAX_COUNT}")));
    }
    let from = match &query.from {
        Some(text) => Timestamp::parse_rfc3339(text)
            .ok_or_else(|| ApiError::invalid(format!("invalid `from`: `{text}` is not an RFC 3339 time")))?,
        None => Timestamp::now(),
    };
    let fire_times = fire_times(&query.expression, &timezone, from, count)?;
    Ok(axum::Json(Preview { expression: query.expression, timezone, from, fire_times }))
}

/// The next `count` fire times of `expression` in `timezone` after `from`, as RFC 3339 with the zone's offset: what
/// this endpoint and the console's cron preview show.
pub(crate) fn fire_times(
    expression: &str,
    timezone: &str,
    from: Timestamp,
    count: usize,
) -> Result<Vec<String>, jobs_cron::Error> {
    Ok(Schedule::parse(expression, timezone)?.preview(from, count))
}
