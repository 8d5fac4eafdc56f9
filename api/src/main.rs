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
    let command = std::env::args().nth(1);
    let settings = Settings::from_env()?;
    shared::telemetry::init(settings.log_format, &settings.log_filter)?;
    match command.as_deref() {
        None | Some("serve") => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "listening");
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Some("migrate") => {
            shared::db::migrate(&settings).await?;
        }
        Some(other) => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(())
}
