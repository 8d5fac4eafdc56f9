use std::process::ExitCode;

use shared::serve::{run_binary, shutdown_signal};
use shared::settings::Settings;
use webhook_worker::startup::Worker;

// Fewer allocator locks and less fragmentation than glibc's under many small
// per-request allocations (docs/PERFORMANCE-HISTORY.md has the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    run_binary("webhook-worker", serve).await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let worker = Worker::build(settings).await?;
    tracing::info!(port = worker.port(), "listening");
    worker.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
