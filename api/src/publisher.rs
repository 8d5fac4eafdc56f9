//! The publisher: domain events from the outbox to the `registry-events`
//! topic, and dead webhook deliveries to the `webhook-dead-letter` topic,
//! with the official `google-cloud-pubsub` client.
//!
//! At least once and after commit: a row is marked published only after
//! Pub/Sub acknowledged it, so a crash or an outage means publishing again,
//! never losing. Consumers drop duplicates by the `event_id` attribute.
//!
//! In order per aggregate: the ordering key is the aggregate id, and a
//! transaction-scoped advisory lock lets one publisher (of all API instances)
//! publish events at a time, in outbox position order. An event's position
//! is taken while its transaction holds the aggregate's row lock, so within
//! an aggregate position order is commit order. When a publish fails the
//! client pauses that ordering key; the rest of that key's batch stays
//! unpublished, the key is resumed, and the next round starts from the
//! failed event.
//!
//! Never on the request path: requests only write rows; an outage of Pub/Sub
//! delays events, not requests.

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
use shared::events::{Aggregate, Envelope, SCHEMA_VERSION};
use shared::settings::PubSubSettings;
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use crate::outbox::{self, OutboxSignal};

/// Events taken per round (one Publish batch per ordering key at most).
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
/// Names the advisory lock that makes one publisher at a time publish events.
const EVENTS_LOCK: i64 = 0x6167_656e_7473; // "agents"

pub struct EventPublisher {
    db: PgPool,
    events: Publisher,
    dead_letters: Publisher,
    signal: OutboxSignal,
}

impl EventPublisher {
    /// With `PUBSUB_ENDPOINT` set (the local stand-in), anonymous credentials;
    /// otherwise Google's endpoint with Application Default Credentials.
    pub async fn new(db: PgPool, settings: &PubSubSettings, signal: OutboxSignal) -> anyhow::Result<Self> {
        let backoff = ExponentialBackoffBuilder::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_maximum_delay(Duration::from_secs(2))
            .build()
            .context("the Pub/Sub backoff is malformed")?;
        let builder = BasePublisher::builder()
            .with_retry_policy(RetryableErrors.with_time_limit(PUBLISH_TIME_LIMIT))
            .with_backoff_policy(backoff);
        let client = match &settings.endpoint {
            Some(endpoint) => {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                builder.with_endpoint(endpoint).with_credentials(anonymous).build().await
            }
            None => builder.build().await,
        }
        .context("cannot build the Pub/Sub client")?;
        Ok(Self {
            db,
            events: client.publisher(&settings.events_topic).build(),
            dead_letters: client.publisher(&settings.dead_letter_topic).build(),
            signal,
        })
    }

    /// Publishes until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        loop {
            let events = self.publish_events().await;
            let dead_letters = self.publish_dead_letters().await;
            let pause = match (events, dead_letters) {
                (Ok(events), Ok(dead)) if events == EVENT_BATCH as usize || dead == DEAD_LETTER_BATCH as usize => {
                    Duration::ZERO
                }
                (Ok(_), Ok(_)) => POLL_INTERVAL,
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(error = format!("{error:#}"), "publishing paused; events stay in the outbox");
                    RETRY_DELAY
                }
            };
            tokio::select! {
                () = self.signal.events_written() => {}
                () = tokio::time::sleep(pause) => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    /// Publishes one batch of unpublished events in position order; returns
    /// how many were published.
    async fn publish_events(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let locked = sqlx::query_scalar!(r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#, EVENTS_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0); // Another instance is publishing.
        }
        let events = sqlx::query!(
            "SELECT id, aggregate_type, aggregate_id, type AS event_type, data, position, occurred_at
             FROM events WHERE published_at IS NULL ORDER BY position LIMIT $1",
            EVENT_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut pending = Vec::with_capacity(events.len());
        for event in &events {
            let aggregate = Aggregate::from_stored(&event.aggregate_type, event.aggregate_id)
                .with_context(|| format!("event {} has an unknown aggregate type", event.id))?;
            let id = EventId::from_uuid(event.id);
            let envelope =
                Envelope::new(id, &event.event_type, aggregate, event.position, event.occurred_at, &event.data);
            let message = Message::new()
                .set_data(serde_json::to_vec(&envelope)?)
                .set_ordering_key(aggregate.id())
                .set_attributes([
                    ("event_id", id.to_string()),
                    ("event_type", event.event_type.clone()),
                    ("aggregate_id", aggregate.id()),
                    ("schema_version", SCHEMA_VERSION.to_string()),
                ]);
            pending.push((event.id, aggregate.id(), self.events.publish(message)));
        }
        let mut published = Vec::with_capacity(pending.len());
        let mut paused: HashSet<String> = HashSet::new();
        let mut failure = None;
        for (id, key, outcome) in pending {
            match outcome.await {
                // After a failure the key's later events wait: order beats progress.
                Ok(_) if !paused.contains(&key) => published.push(id),
                Ok(_) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                    paused.insert(key);
                }
            }
        }
        sqlx::query!("UPDATE events SET published_at = now() WHERE id = ANY($1)", &published).execute(&mut *tx).await?;
        tx.commit().await?;
        for key in paused {
            self.events.resume_publish(key);
        }
        outbox::round_result(published.len(), failure.map(Into::into), "events not published")
    }

    /// Publishes dead deliveries not yet on the dead-letter topic.
    async fn publish_dead_letters(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let dead = sqlx::query!(
            r#"SELECT d.id, d.event_id, e.type AS event_type, d.job_id, d.agent_id, d.client_id, d.target_url,
                      d.attempts, d.last_error, d.finished_at AS "finished_at!"
               FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
               WHERE d.status = 'dead' AND d.dead_lettered_at IS NULL AND d.finished_at IS NOT NULL
               ORDER BY d.finished_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED"#,
            DEAD_LETTER_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
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
                ("event_type", delivery.event_type.clone()),
                ("recipient_id", recipient),
                ("schema_version", SCHEMA_VERSION.to_string()),
            ]);
            pending.push((delivery.id, self.dead_letters.publish(message)));
        }
        let mut published: Vec<Uuid> = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (id, outcome) in pending {
            match outcome.await {
                Ok(_) => published.push(id),
                Err(error) => failure = Some(error),
            }
        }
        sqlx::query!("UPDATE webhook_deliveries SET dead_lettered_at = now() WHERE id = ANY($1)", &published)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        outbox::round_result(published.len(), failure.map(Into::into), "dead letters not published")
    }
}
