//! What the commands that work with the local stack share: where `cargo xtask
//! dev` runs what (`events` and `demo` connect there), the names it gives
//! Pub/Sub resources, and the settings the local commands read.

use anyhow::Context;
use shared::settings::SettingsSource;

use crate::runner::Runner;

/// Where `cargo xtask dev` runs its webhook receiver (and `demo` points agents).
pub const DEMO_RECEIVER_PORT: u16 = 8090;

/// Where `cargo xtask dev` runs the Pub/Sub emulator (or the stand-in): the
/// emulator's usual port.
pub const PUBSUB_PORT: u16 = 8085;

/// The ordered subscription on the events topic that `dev` creates for
/// consumers (the name `infra/modules/pubsub` gives it in the cloud); `cargo
/// xtask events` reads it.
pub const EVENTS_SUBSCRIPTION: &str = "registry-events-audit";

/// The base URL of the local Pub/Sub emulator (or stand-in).
pub fn pubsub_endpoint() -> String {
    format!("http://127.0.0.1:{PUBSUB_PORT}")
}

/// The project `P` of a topic named `projects/P/topics/T`.
pub fn project_of(topic: &str) -> anyhow::Result<&str> {
    topic
        .strip_prefix("projects/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(project, _)| project)
        .with_context(|| format!("{topic:?} is not projects/P/topics/T"))
}

/// `projects/P/subscriptions/{id}` in the project of `topic` (`projects/P/topics/T`).
pub fn subscription_of(topic: &str, id: &str) -> anyhow::Result<String> {
    Ok(format!("projects/{}/subscriptions/{id}", project_of(topic)?))
}

/// The environment over `.env`, or over `deploy/.env.example` when there is
/// no `.env` (a fresh clone, or a dry run that wrote nothing).
pub fn local_settings(runner: &Runner) -> anyhow::Result<SettingsSource> {
    let env_file = runner.path(".env");
    let file = if env_file.exists() { env_file } else { runner.path("deploy/.env.example") };
    Ok(SettingsSource::from_env_over_file(&file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_is_named_in_the_topic_s_project() {
        let name = subscription_of("projects/local/topics/registry-events", "registry-events-audit").unwrap();
        assert_eq!(name, "projects/local/subscriptions/registry-events-audit");
        assert!(subscription_of("registry-events", "x").is_err());
        assert_eq!(project_of("projects/local/topics/registry-events").unwrap(), "local");
    }
}
