use std::process::ExitCode;

use api::startup::Application;
use shared::serve::shutdown_signal;
use shared::settings::Settings;

const USAGE: &str = "usage: api [serve|migrate]
  serve    run the HTTP API (the default)
  migrate  create the database if missing and apply pending migrations";

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
    let command = std::env::args().nth(1);
    let settings = Settings::from_env()?;
    let telemetry = shared::telemetry::init("api", &settings)?;
    let outcome = match command.as_deref() {
        None | Some("serve") => serve(settings).await,
        Some("migrate") => shared::db::migrate(&settings).await.map(drop).map_err(Into::into),
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    // Whatever the outcome: the spans of a failure matter most.
    telemetry.shutdown();
    outcome
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
