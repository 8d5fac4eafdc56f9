//! Runs the Cloud Tasks stand-in (see `tests::cloud_tasks`) on 127.0.0.1 until
//! Ctrl-C, for `cargo xtask dev`. Point the enqueuer's Cloud Tasks client at
//! the printed endpoint with anonymous credentials.
//!
//! Environment (all optional):
//! - `CLOUD_TASKS_STANDIN_PORT`: port to listen on (8123).
//! - `CLOUD_TASKS_STANDIN_MAX_ATTEMPTS`: attempts per task, the first included (20).
//! - `CLOUD_TASKS_STANDIN_MIN_BACKOFF_MS`: wait before the first retry (5000).
//! - `CLOUD_TASKS_STANDIN_MAX_BACKOFF_MS`: longest wait between retries (600000).
//! - `CLOUD_TASKS_STANDIN_MAX_DOUBLINGS`: times the wait doubles before growing linearly (5).
//! - `CLOUD_TASKS_STANDIN_MAX_DISPATCHES_PER_SECOND`: dispatch starts per second of each queue, at least 1 (10).
//! - `CLOUD_TASKS_STANDIN_MAX_CONCURRENT_DISPATCHES`: dispatches in flight at once in each queue, at least 1
//!   (100, the queue's Terraform default).
//! - `CLOUD_TASKS_STANDIN_DISPATCH_DEADLINE_MS`: wait for a response when a task sets no
//!   `dispatchDeadline` (600000).
//! - `CLOUD_TASKS_STANDIN_AUTHORIZATION`: `Authorization` header value added to every dispatch,
//!   standing in for the OIDC token Cloud Tasks would mint (none).

use tests::cloud_tasks::{CloudTasksStandIn, StandInConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = match std::env::var("CLOUD_TASKS_STANDIN_PORT") {
        Ok(port) => {
            port.parse().map_err(|_| anyhow::anyhow!("CLOUD_TASKS_STANDIN_PORT must be a port, got {port:?}"))?
        }
        Err(_) => 8123,
    };
    let config = StandInConfig::from_env()?;
    let summary = format!(
        "{} attempts, backoff {:?}..{:?} ({} doublings), {}/s, {} in flight, deadline {:?}, authorization {}",
        config.max_attempts,
        config.min_backoff,
        config.max_backoff,
        config.max_doublings,
        config.max_dispatches_per_second,
        config.max_concurrent_dispatches,
        config.dispatch_deadline,
        if config.authorization.is_some() { "set" } else { "none" },
    );
    let standin = CloudTasksStandIn::start_on(port, config).await?;
    eprintln!("cloud_tasks_standin: listening on {} ({summary})", standin.endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
