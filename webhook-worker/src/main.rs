use std::process::ExitCode;

use shared::serve::shutdown_signal;
use shared::settings::Settings;
use webhook_worker::startup::Worker;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    shared::telemetry::init(settings.log_format, &settings.log_filter)?;
    let worker = Worker::build(settings).await?;
    tracing::info!(port = worker.port(), "listening");
    worker.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
