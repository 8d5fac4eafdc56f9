use std::process::ExitCode;

use api::startup::Application;
use shared::progress::Report;
use shared::serve::{run_binary, shutdown_signal};
use shared::settings::Settings;

const USAGE: &str = "usage: api [serve|migrate]
  serve    run the HTTP API (the default)
  migrate  create the database if missing, apply pending migrations, seal plaintext webhook secrets";

// Fewer allocator locks and less fragmentation than glibc's under many small
// per-request allocations (docs/PERFORMANCE-HISTORY.md has the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    run_binary("api", async move |settings| match command.as_deref() {
        None | Some("serve") => serve(settings).await,
        Some("migrate") => migrate(settings).await,
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    })
    .await
}

/// The migrations, then the one step a migration cannot do: sealing the
/// webhook secrets stored in plaintext before they were encrypted at rest.
async fn migrate(settings: Settings) -> anyhow::Result<()> {
    shared::db::migrate(&settings).await?;
    let sealer = shared::sealing::Sealer::from_settings(&settings).await?;
    let db = shared::db::lazy_pool(&settings, settings.database_max_connections, shared::db::Plans::Chosen)?;
    let sealed = shared::sealing::seal_legacy_secrets(&db, &sealer, usize::MAX, Report::Log).await?;
    tracing::info!(sealed, "plaintext webhook secrets sealed");
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
