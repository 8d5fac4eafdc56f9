//! `cargo xtask prepare`: regenerates `.sqlx/`, the offline data that lets
//! `sqlx::query!` check SQL at compile time without a database. The data
//! comes from a scratch database migrated from scratch, so it reflects the
//! migrations and nothing else.

use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::settings::Settings;
use sqlx::migrate::MigrateDatabase;
use xshell::cmd;

use crate::runner::Runner;

/// Workspace packages whose code holds `sqlx::query!` macros.
const QUERY_PACKAGES: &[&str] = &["shared", "api", "webhook-worker"];

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let out = runner.path(".sqlx");
    regenerate(runner, &out)?;
    if !runner.dry_run {
        eprintln!("wrote {} query files to .sqlx/; commit them", std::fs::read_dir(&out)?.count());
    }
    Ok(())
}

/// Writes the offline data of every query into `out`, replacing what was there.
pub fn regenerate(runner: &Runner, out: &Path) -> anyhow::Result<()> {
    let settings = scratch_settings(runner)?;
    let url = settings.database_url.expose_secret().to_owned();
    runner.step("recreate the scratch database agent_registry_sqlx and apply migrations", || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            sqlx::Postgres::drop_database(&url).await.ok();
            shared::db::migrate(&settings).await
        })?;
        Ok(())
    })?;
    runner.step(&format!("empty {}", out.display()), || {
        if out.exists() {
            std::fs::remove_dir_all(out)?;
        }
        std::fs::create_dir_all(out)?;
        Ok(())
    })?;
    let sh = &runner.sh;
    // The macros only run when their crate compiles, so force that.
    for package in QUERY_PACKAGES {
        runner.run(cmd!(sh, "cargo clean --package {package}"))?;
    }
    runner.run(
        cmd!(sh, "cargo check --workspace --all-targets")
            .env("SQLX_OFFLINE", "false")
            .env("SQLX_OFFLINE_DIR", out)
            .env("DATABASE_URL", &url),
    )
}

/// The settings in use, with the database swapped for `agent_registry_sqlx`
/// on the same server.
fn scratch_settings(runner: &Runner) -> anyhow::Result<Settings> {
    let mut source = crate::local::local_settings(runner)?;
    let settings = Settings::from_source(&source)?;
    let mut url = url::Url::parse(settings.database_url.expose_secret()).context("DATABASE_URL is malformed")?;
    url.set_path("/agent_registry_sqlx");
    source.set("DATABASE_URL", url.to_string());
    Ok(Settings::from_source(&source)?)
}
