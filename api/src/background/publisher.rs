//! The publisher: domain events from the outbox to the `registry-events`
//! topic, and dead webhook deliveries to the `webhook-dead-letter` topic,
//! with the official `google-cloud-pubsub` client.
//!
//! At least once and after commit: a row is marked published only after
//! Pub/Sub acknowledged it, so a crash or an outage means publishing again,
//! never losing. Consumers drop duplicates by the `event_id` attribute.
//!
//! In order per aggregate: all of an aggregate's events carry its ordering
//! key (one of 16 per type, [`Aggregate::ordering_key`], so a round's events
//! go in a few Publish calls), and one publisher (of all API instances)
//! publishes at a time — whoever holds the `publisher_lease` row — in outbox
//! position order. An event's position is
//! taken while its transaction holds the aggregate's row lock, so within an
//! aggregate position order is commit order. When a publish fails, the
//! client refuses that ordering key's later messages in the round; they stay
//! unpublished and the next round starts from the failed event.
//!
//! Never on the request path, and holding nothing while Pub/Sub is slow:
//! rows are read, published, then marked in short statements of their own,
//! so an outage delays events but takes no connection or row lock from
//! requests.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_pubsub::client::{BasePublisher, Publisher};
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;
use serde_json::json;
use shared::domain::{AgentId, ClientId, DeliveryId, EventId, JobId};
use shared::error_chain::Causes;
use shared::events::{Aggregate, Envelope, SCHEMA_VERSION};
use shared::settings::PubSubSettings;
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use url::Url;

use crate::background::rounds;
use crate::background::singleton::Singleton;
use crate::outbox::OutboxSignal;

/// Events taken per round.
const EVENT_BATCH: i64 = 500;
/// Dead deliveries taken per round.
const DEAD_LETTER_BATCH: i64 = 100;
/// How often the publisher looks without being woken (the worker's dead
/// deliveries and `endpoint.*` events, other instances' rows, an outage that
/// ended).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// After a failed round, before the next.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long the client retries one publish before reporting it failed; the
/// row then stays unpublished and the next round tries again.
const PUBLISH_TIME_LIMIT: Duration = Duration::from_secs(10);
/// How long a lease lasts unless renewed: longer than a round can take (two
/// publish stages of at most `PUBLISH_TIME_LIMIT`), so it never lapses while
/// its holder is publishing.
const LEASE: Duration = Duration::from_secs(30);
const LEASE_NAME: &str = "outbox";

pub struct EventPublisher {
    db: PgPool,
    client: BasePublisher,
    settings: PubSubSettings,
    signal: OutboxSignal,
    lease: Singleton,
}

/// With an `http://` `PUBSUB_ENDPOINT` (the emulator or the stand-in), anonymous
/// credentials; otherwise Application Default Credentials, at the given
/// `https://` endpoint (a regional one, so ordering holds) or Google's
/// global one.
async fn client(settings: &PubSubSettings) -> anyhow::Result<BasePublisher> {
    let backoff = ExponentialBackoffBuilder::new()
        .with_initial_delay(Duration::from_millis(100))
        .with_maximum_delay(Duration::from_secs(2))
        .build()
        .context("the Pub/Sub backoff is malformed")?;
    let mut builder = BasePublisher::builder()
        .with_retry_policy(RetryableErrors.with_time_limit(PUBLISH_TIME_LIMIT))
        .with_backoff_policy(backoff);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
        if endpoint.starts_with("http://") {
            builder = builder.with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
        }
    }
    builder.build().await.context("cannot build the Pub/Sub client")
}

impl EventPublisher {
    /// A publisher through [`client`].
    pub async fn new(db: PgPool, settings: &PubSubSettings, signal: OutboxSignal) -> anyhow::Result<Self> {
        let client = client(settings).await?;
        let lease = Singleton::new(LEASE_NAME, LEASE);
        Ok(Self { db, client, settings: settings.clone(), signal, lease })
    }

    /// Publishes until `stopping` turns true, then hands the lease back.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        loop {
            let round = self.round().await;
            if let Err(error) = &round {
                tracing::warn!(error = %Causes(&**error), "publishing paused; events stay in the outbox");
            }
            let woken = self.signal.events_written();
            if !rounds::wait_for_next_round(&round, woken, POLL_INTERVAL, RETRY_DELAY, &mut stopping).await {
                break;
            }
        }
        self.lease.release(&self.db).await;
    }

    /// One round, if this process holds the lease; returns whether a batch
    /// was full (more is waiting).
    async fn round(&self) -> anyhow::Result<bool> {
        if !self.lease.hold(&self.db).await? {
            return Ok(false); // Another instance publishes.
        }
        let events = self.publish_events().await;
        let dead_letters = self.publish_dead_letters().await;
        Ok(events? == EVENT_BATCH as usize || dead_letters? == DEAD_LETTER_BATCH as usize)
    }

    /// A publisher for one round. The client keeps a task per ordering key
    /// for as long as its publisher lives (googleapis/google-cloud-rust#6723)
    /// and pauses a key after a failed publish; a publisher per round frees
    /// the tasks and starts every key unpaused.
    fn publisher(&self, topic: &str) -> Publisher {
        self.client.publisher(topic).build()
    }

    /// Publishes one batch of unpublished events in position order; returns
    /// how many were published.
    async fn publish_events(&self) -> anyhow::Result<usize> {
        let events = sqlx::query!(
            "SELECT id, aggregate_type, aggregate_id, type AS event_type, data, position, occurred_at
             FROM events WHERE published_at IS NULL ORDER BY position LIMIT $1",
            EVENT_BATCH
        )
        .fetch_all(&self.db)
        .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let publisher = self.publisher(&self.settings.events_topic);
        let mut pending = Vec::with_capacity(events.len());
        for event in &events {
            let aggregate = Aggregate::from_stored(&event.aggregate_type, event.aggregate_id)
                .with_context(|| format!("event {} has an unknown aggregate type", event.id))?;
            let id = EventId::from_uuid(event.id);
            let envelope =
                Envelope::new(id, &event.event_type, aggregate, event.position, event.occurred_at, &event.data);
            let key = aggregate.ordering_key();
            let message =
                Message::new().set_data(serde_json::to_vec(&envelope)?).set_ordering_key(&key).set_attributes([
                    ("event_id", id.to_string()),
                    ("event_type", event.event_type.clone()),
                    ("aggregate_id", aggregate.id()),
                    ("schema_version", SCHEMA_VERSION.to_string()),
                ]);
            pending.push((event.id, key, publisher.publish(message)));
        }
        let mut published = Vec::with_capacity(pending.len());
        let mut failed_keys: HashSet<String> = HashSet::new();
        let mut failure = None;
        for (id, key, outcome) in pending {
            match outcome.await {
                // After a failure the key's later events wait: order beats progress.
                Ok(_) if !failed_keys.contains(&key) => published.push(id),
                Ok(_) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                    failed_keys.insert(key);
                }
            }
        }
        // Committed asynchronously: marks lost to a Postgres crash are the
        // latest ones (the WAL is flushed in order), so those events are
        // published again in order — at least once, as documented.
        sqlx::query!(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
             UPDATE events SET published_at = now() WHERE EXISTS (SELECT FROM async_commit) AND id = ANY($1)",
            &published
        )
        .execute(&self.db)
        .await?;
        rounds::round_result(published.len(), failure.map(Into::into), "events not published")
    }

    /// Publishes dead deliveries not yet on the dead-letter topic.
    async fn publish_dead_letters(&self) -> anyhow::Result<usize> {
        let dead = sqlx::query!(
            r#"SELECT d.id, d.generation, d.event_id, e.type AS event_type, d.job_id, d.agent_id, d.client_id,
                      d.target_url, d.attempts, d.last_error, d.finished_at AS "finished_at!"
               FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
               WHERE d.status = 'dead' AND d.dead_lettered_at IS NULL AND d.finished_at IS NOT NULL
               ORDER BY d.finished_at LIMIT $1"#,
            DEAD_LETTER_BATCH
        )
        .fetch_all(&self.db)
        .await?;
        if dead.is_empty() {
            return Ok(0);
        }
        let publisher = self.publisher(&self.settings.dead_letter_topic);
        let mut pending = Vec::with_capacity(dead.len());
        for delivery in &dead {
            let recipient = match (delivery.agent_id, delivery.client_id) {
                (Some(agent), _) => AgentId::from_uuid(agent).to_string(),
                (None, Some(client)) => ClientId::from_uuid(client).to_string(),
                (None, None) => anyhow::bail!("delivery {} has no recipient", delivery.id),
            };
            let id = DeliveryId::from_uuid(delivery.id);
            let letter = json!({
                "schema_version": SCHEMA_VERSION,
                "delivery_id": id,
                "generation": delivery.generation,
                "event_id": EventId::from_uuid(delivery.event_id),
                "event_type": delivery.event_type,
                "job_id": delivery.job_id.map(JobId::from_uuid),
                "recipient_id": recipient,
                // Host only: a URL's path and query may hold the recipient's secrets.
                "target_host": Url::parse(&delivery.target_url).ok().and_then(|url| url.host_str().map(str::to_owned)),
                "attempts": delivery.attempts,
                "last_error": delivery.last_error,
                "died_at": delivery.finished_at.format(&Rfc3339)?,
            });
            let message = Message::new().set_data(serde_json::to_vec(&letter)?).set_attributes([
                ("delivery_id", id.to_string()),
                ("generation", delivery.generation.to_string()),
                ("event_type", delivery.event_type.clone()),
                ("recipient_id", recipient),
                ("schema_version", SCHEMA_VERSION.to_string()),
            ]);
            pending.push(((delivery.id, delivery.generation), publisher.publish(message)));
        }
        let (mut ids, mut generations) = (Vec::with_capacity(pending.len()), Vec::with_capacity(pending.len()));
        let mut failure = None;
        for ((id, generation), outcome) in pending {
            match outcome.await {
                Ok(_) => {
                    ids.push(id);
                    generations.push(generation);
                }
                Err(error) => failure = Some(error),
            }
        }
        // Only the death that was published: a resend since then is a new generation.
        sqlx::query!(
            "UPDATE webhook_deliveries d SET dead_lettered_at = now()
             FROM UNNEST($1::uuid[], $2::int4[]) AS published (id, generation)
             WHERE d.id = published.id AND d.generation = published.generation AND d.status = 'dead'",
            &ids,
            &generations,
        )
        .execute(&self.db)
        .await?;
        rounds::round_result(ids.len(), failure.map(Into::into), "dead letters not published")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTION_REFUSED: &str = "cannot connect to endpoint: \
             code: 'The service is currently unavailable', message: \"tcp connect error\", source: \
             tonic::transport::Error(Transport, ConnectError(ConnectError(\"tcp connect error\", 127.0.0.1:PORT, \
             Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }))): \
             transport error: tcp connect error: Connection refused (os error 111)";

    /// What an operator reads while Pub/Sub refuses connections: each cause
    /// once. Takes `PUBLISH_TIME_LIMIT`: the client retries until then.
    #[tokio::test]
    async fn a_refused_connection_is_told_once() {
        // A port that refuses: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = PubSubSettings {
            events_topic: "projects/local/topics/registry-events".into(),
            dead_letter_topic: "projects/local/topics/webhook-dead-letter".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
        };
        let client = client(&settings).await.unwrap();
        let publisher = client.publisher(&settings.events_topic).build();
        let failure = publisher.publish(Message::new().set_data("{}")).await.unwrap_err();
        let error = rounds::round_result(0, Some(failure.into()), "events not published").unwrap_err();
        // The gRPC status's own text has its source's debug form in it: it is
        // the client's; each cause after it is shown once (walking the chain
        // showed that text four times, and "tcp connect error" three; now
        // once as a cause, besides the client's debug text).
        let told = Causes(&*error).to_string().replace(&port.to_string(), "PORT");
        let causes = told
            .strip_prefix("events not published: the publish operation was interrupted by an error: ")
            .and_then(|rest| rest.strip_suffix(CONNECTION_REFUSED))
            .unwrap_or_else(|| panic!("not the causes expected, each once: {told}"));
        // On a busy machine the time limit can end the retries during their
        // back-off, and the client says so before the same causes.
        assert!(
            causes.is_empty() || (causes.starts_with("retry policy is exhausted") && !causes.contains("connect")),
            "{told}"
        );
    }
}
