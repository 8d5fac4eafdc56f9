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
    shared::tls::install_crypto_provider();
    let settings = Settings::from_env()?;
    let telemetry = shared::telemetry::init("webhook-worker", &settings)?;
    let outcome = serve(settings).await;
    // Whatever the outcome: the spans of a failure matter most.
    telemetry.shutdown();
    outcome
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let worker = Worker::build(settings).await?;
    tracing::info!(port = worker.port(), "listening");
    worker.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
