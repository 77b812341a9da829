//! Registration with the scheduler, and the heartbeat loop that keeps it alive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use jobs_model::ErrorKind;
use jobs_model::protocol::{HeartbeatRequest, RegisterRequest};

use crate::backoff::Backoff;
use crate::executor::Shared;

const REGISTER_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How soon a heartbeat the scheduler could not take is sent again, plus up to a second of jitter.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// Up to a second, different each time (from the clock's nanoseconds: no randomness crate for this).
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |now| now.subsec_nanos());
    Duration::from_nanos(u64::from(nanos % 1_000_000_000))
}

/// Registers, then heartbeats every interval the scheduler asked for, until `stop` turns true.
///
/// A heartbeat answered 404 (the scheduler forgot this instance, e.g. after a database reset)
/// registers again and continues with the new id.
pub(crate) async fn run(shared: Arc<Shared>, request: RegisterRequest, mut stop: watch::Receiver<bool>) {
    let Some(mut interval) = register(&shared, &request, &mut stop).await else {
        return;
    };
    let mut pause = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let Some(executor_id) = *shared.executor_id.borrow() else {
            return;
        };
        let heartbeat =
            HeartbeatRequest { running_executions: shared.executions.ids(), load: Some(shared.executions.load()) };
        pause = interval;
        match shared.client.heartbeat(executor_id, &heartbeat).await {
            Ok(()) => {
                tracing::trace!(%executor_id, running = heartbeat.running_executions.len(), "heartbeat sent");
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                tracing::warn!(%executor_id, "the scheduler does not know this executor any more, registering again");
                match register(&shared, &request, &mut stop).await {
                    Some(next) => (interval, pause) = (next, next),
                    None => return,
                }
            }
            Err(error) => {
                // The scheduler or its database away: tried again soon rather than a whole interval later, so
                // that the instance is seen again as soon as the scheduler can record it (with jitter, so that
                // many instances do not come back in step), unless it asked to wait longer (`Retry-After`). Other
                // refusals wait for the next interval.
                if error.kind() == ErrorKind::Unavailable {
                    let asked = error.retry_after().unwrap_or_default();
                    pause = interval.min(asked.max(HEARTBEAT_RETRY) + jitter());
                }
                tracing::warn!(%executor_id, error = %error, "heartbeat failed");
            }
        }
    }
}

/// Registers with the first scheduler that answers, retrying with backoff; `None` if stopped first.
///
/// Returns the heartbeat interval the scheduler asked for.
async fn register(shared: &Shared, request: &RegisterRequest, stop: &mut watch::Receiver<bool>) -> Option<Duration> {
    let mut backoff = Backoff::new(REGISTER_BACKOFF_INITIAL, REGISTER_BACKOFF_MAX);
    loop {
        if *stop.borrow() {
            return None;
        }
        // The request is not raced against `stop`: an answer in flight must be known to deregister.
        match shared.client.register(request).await {
            Ok(response) => {
                tracing::info!(
                    executor_id = %response.executor_id,
                    name = %request.name,
                    instance_id = %request.instance_id,
                    created_tasks = ?response.created_tasks,
                    heartbeat_interval_seconds = response.heartbeat_interval_seconds,
                    "registered with the scheduler"
                );
                shared.executor_id.send_replace(Some(response.executor_id));
                return Some(Duration::from_secs(response.heartbeat_interval_seconds.max(1)));
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(error = %error, "registration failed, retrying");
            }
            Err(error) => tracing::error!(error = %error, "registration refused, retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.wait_for(|stopped| *stopped) => return None,
        }
    }
}
