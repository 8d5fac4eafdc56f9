//! `cargo xtask events`: tails the domain events of the local stack. It
//! subscribes, with the official `google-cloud-pubsub` subscriber, to the
//! ordered subscription that `cargo xtask dev` creates on Google's Pub/Sub
//! emulator, and prints one line per event (type, aggregate id, ordering key,
//! sequence), acknowledging each as it prints it, until Ctrl-C. This is how a
//! downstream consumer reads `registry-events` in the cloud too.

use anyhow::Context;
use google_cloud_auth::credentials::anonymous;
use google_cloud_pubsub::client::Subscriber;
use serde_json::Value;
use shared::settings::Settings;

use crate::local::{EVENTS_SUBSCRIPTION, local_settings, pubsub_endpoint, subscription_of};
use crate::runner::Runner;

pub fn run(runner: &Runner) -> anyhow::Result<()> {
    let settings = Settings::from_source(&local_settings(runner)?)?;
    let subscription = subscription_of(&settings.pubsub.events_topic, EVENTS_SUBSCRIPTION)?;
    let endpoint = pubsub_endpoint();
    runner.step(
        &format!("tail {subscription} on the emulator at {endpoint}, acknowledging each event, until Ctrl-C"),
        || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(tail(&endpoint, &subscription))
        },
    )
}

async fn tail(endpoint: &str, subscription: &str) -> anyhow::Result<()> {
    check_subscription(endpoint, subscription).await?;
    let subscriber = Subscriber::builder()
        .with_endpoint(endpoint)
        .with_credentials(anonymous::Builder::new().build())
        .build()
        .await
        .context("cannot build the Pub/Sub subscriber")?;
    let mut stream = subscriber.subscribe(subscription).build();
    println!("{:<30} {:<40} {:<40} sequence", "type", "aggregate id", "ordering key");
    let mut count = 0usize;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(next) = next else { break };
        let (message, handler) = next.context("the subscription stream failed")?;
        println!("{}", line(&message.data, &message.ordering_key));
        handler.ack();
        count += 1;
    }
    eprintln!("{count} events");
    Ok(())
}

/// One event as a line: its type, aggregate id, the message's ordering key
/// and the event's sequence number (rising with every event).
fn line(data: &[u8], ordering_key: &str) -> String {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return format!("(not JSON: {} bytes) ordering key {ordering_key:?}", data.len());
    };
    let text = |field: &str| event[field].as_str().unwrap_or("?").to_owned();
    format!("{:<30} {:<40} {:<40} {}", text("type"), text("aggregate_id"), ordering_key, event["sequence"])
}

/// Says what is wrong in words before subscribing: nothing listening, the
/// stand-in (no subscriptions) instead of the emulator, or no subscription.
async fn check_subscription(endpoint: &str, subscription: &str) -> anyhow::Result<()> {
    let url = format!("{endpoint}/v1/{subscription}");
    let answer = reqwest::Client::new().get(&url).send().await;
    let start_dev = "start the local stack with `cargo xtask dev` (with the Pub/Sub emulator installed)";
    match answer {
        Err(error) if error.is_connect() => anyhow::bail!("nothing answers at {endpoint}: {start_dev}"),
        Err(error) => {
            anyhow::bail!(
                "{endpoint} does not speak Pub/Sub's REST API ({error}); is the Pub/Sub stand-in running? {start_dev}"
            )
        }
        Ok(response) if response.status() == 404 => {
            anyhow::bail!("{subscription} does not exist on the emulator at {endpoint}: {start_dev}")
        }
        Ok(response) if !response.status().is_success() => anyhow::bail!(
            "{endpoint} answered {} for {subscription}; is the Pub/Sub stand-in running? It has no subscriptions: {start_dev}",
            response.status()
        ),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_names_type_aggregate_key_and_sequence() {
        let data = br#"{"type":"job.created","aggregate_id":"job_1","sequence":1,"data":{}}"#;
        let line = line(data, "job_1");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields, ["job.created", "job_1", "job_1", "1"]);
    }
}
