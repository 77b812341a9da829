//! `cargo xtask migrate`: the same migrations the scheduler runs at start.

use jobs_migrations::sea_orm::Database;
use jobs_migrations::{Migrator, MigratorTrait};

const DEFAULT_URL: &str = "sqlite://data/jobs.db?mode=rwc";

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut action = "up";
    let mut url = std::env::var("JOBS_DATABASE__URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "up" | "down" | "status" | "fresh" => action = arg,
            "--database-url" => url = args.next().ok_or_else(|| anyhow::anyhow!("--database-url needs a URL"))?.clone(),
            other => anyhow::bail!("unknown argument `{other}` for migrate"),
        }
    }
    if url.starts_with("sqlite://") {
        std::fs::create_dir_all("data")?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let db = Database::connect(&url).await.map_err(|error| anyhow::anyhow!("cannot connect to {url}: {error}"))?;
        match action {
            "up" => Migrator::up(&db, None).await?,
            "down" => Migrator::down(&db, Some(1)).await?,
            "fresh" => Migrator::fresh(&db).await?,
            _ => Migrator::status(&db).await?,
        }
        println!("migrate {action}: done");
        anyhow::Ok(())
    })
}
