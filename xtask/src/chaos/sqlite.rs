//! The SQLite scenarios: the database's file system full for a while, and a data directory not writable at start.

use std::time::Duration;

use jobs_model::Timestamp;

use crate::chaos::Context;
use crate::chaos::cluster::{Cluster, Setup, sleep_until, this_second};
use crate::chaos::disk::Tmpfs;
use crate::chaos::observe::probe;
use crate::chaos::verdict::Outcome;

/// One scheduler on a 16 MiB tmpfs, five every-second tasks and manual triggers every 200 ms; the file system is
/// filled to the last byte for 20 s (8 s short), then freed.
pub(crate) async fn disk_full(ctx: &Context, out: &mut Outcome) -> anyhow::Result<()> {
    let disk = Tmpfs::mount(&ctx.dir.join("sqlite-disk"), false)?;
    let url = format!("sqlite://{}/jobs.db?mode=rwc", disk.dir().display());
    let setup = Setup { schedulers: 1, tasks: 5, ..Setup::default() };
    let cluster = Cluster::start(ctx, "sqlite-disk-full", &url, &setup).await?;
    let triggers = cluster.start_triggers();
    let start = cluster.warm_up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let filled = disk.fill()?;
    out.note("filler_bytes", filled);
    tokio::time::sleep(ctx.pick(Duration::from_secs(20), Duration::from_secs(8))).await;
    disk.free()?;
    let fault_end = Timestamp::now();
    out.recovery_ms = cluster.wait_first_fire_after(fault_end, Duration::from_secs(10)).await;
    sleep_until(fault_end.add_millis(5_000)).await;
    let end = this_second(Timestamp::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let triggers = triggers.stop().await;
    cluster.account(out, start, end, Some(triggers)).await?;
    // A recovery slower than the wait above is still measured from what came later.
    out.recovery_ms = out.recovery_ms.or_else(|| cluster.first_fire_after(fault_end));
    out.check_accounting();
    out.check_recovery(2_000);
    cluster.stop().await;
    Ok(())
}

/// One scheduler started on a read-only data directory: it must either exit non-zero with one clear error line
/// within 10 s, or serve `/ready` 503 until the directory becomes writable and then `/ready` 200 and fires.
pub(crate) async fn readonly_start(ctx: &Context, out: &mut Outcome) -> anyhow::Result<()> {
    const NAME: &str = "sqlite-readonly-start";
    let disk = Tmpfs::mount(&ctx.dir.join("sqlite-readonly"), true)?;
    let url = format!("sqlite://{}/jobs.db?mode=rwc", disk.dir().display());
    let setup = Setup { schedulers: 1, tasks: 2, ..Setup::default() };
    let mut cluster = Cluster::launch(ctx, NAME, &url, &setup)?;
    let started = Timestamp::now();
    let ready_url = format!("{}/ready", cluster.nodes[0].url());
    let mut exit = None;
    let mut ready_answers = Vec::new();
    while Timestamp::now().millis_since(started) < 10_000 {
        if let Some(status) = cluster.nodes[0].exit_status() {
            exit = Some((status, Timestamp::now().millis_since(started)));
            break;
        }
        if let Some(status) = probe(&cluster.quick, &ready_url).await.status {
            ready_answers.push(status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    out.note("ready_while_read_only", &ready_answers);
    if let Some((status, after_ms)) = exit {
        let log = std::fs::read_to_string(cluster.nodes[0].log_path()).unwrap_or_default();
        let errors: Vec<&str> = log.lines().filter(|line| line.to_lowercase().contains("error")).collect();
        out.note("exit_code", status.code());
        out.note("exit_after_ms", after_ms);
        out.note("error_lines", &errors);
        out.check(!status.success(), "exited with status 0 on a read-only directory");
        out.check(errors.len() == 1, format!("exited with {} error lines, not one", errors.len()));
        out.check(!log.contains("panicked"), "exited with a panic");
        return Ok(());
    }
    out.note("outcome", "kept running");
    out.check(!ready_answers.contains(&200), "/ready answered 200 while the directory was read-only");
    out.check(
        !ready_answers.is_empty() && ready_answers.iter().all(|status| *status == 503),
        format!("/ready answered {ready_answers:?} while read-only, not 503"),
    );
    disk.make_writable()?;
    let writable_at = Timestamp::now();
    let ready = crate::procs::wait_for("/ready 200", Duration::from_secs(10), || async {
        (probe(&cluster.quick, &ready_url).await.status == Some(200)).then_some(())
    })
    .await;
    match ready {
        Ok(()) => out.note("ready_after_writable_ms", Timestamp::now().millis_since(writable_at)),
        Err(_) => out.check(false, "/ready not 200 within 10 s of the directory becoming writable"),
    }
    match cluster.prepare(NAME, &setup).await {
        Ok(()) => {
            let first = crate::procs::snapshot(&cluster.receipts).iter().map(|receipt| receipt.received_at).min();
            out.recovery_ms = first.map(|first| first.millis_since(writable_at));
            out.check_recovery(10_000);
        }
        Err(error) => out.check(false, format!("no fires after the directory became writable: {error:#}")),
    }
    cluster.stop().await;
    Ok(())
}
