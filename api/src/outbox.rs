//! The outbox: a state change, its event (`shared::events::record`) and the
//! webhook deliveries it causes are written in one transaction, so nothing
//! acknowledged is lost whatever fails afterwards. The relay (deliveries →
//! Cloud Tasks) and the publisher (events → Pub/Sub) take it from there; a
//! delivery carries the `traceparent` of the request that wrote it.

use std::sync::Arc;

use shared::domain::{AgentId, DeliveryId, EventId, JobId};
use sqlx::PgConnection;
use tokio::sync::Notify;

/// Wakes the relay and the publisher after a commit that wrote to the
/// outbox, so they need not wait for their next poll.
#[derive(Clone, Default)]
pub struct OutboxSignal {
    deliveries: Arc<Notify>,
    events: Arc<Notify>,
}

impl OutboxSignal {
    pub fn committed(&self) {
        self.deliveries.notify_one();
        self.events.notify_one();
    }

    pub async fn deliveries_written(&self) {
        self.deliveries.notified().await;
    }

    pub async fn events_written(&self) {
        self.events.notified().await;
    }
}

/// A delivery of `event` to the agent's endpoint. While the endpoint is
/// disabled the delivery is dead from the start: it goes to the dead-letter
/// topic and can be redriven once the endpoint is enabled again.
pub async fn deliver_to_agent(
    tx: &mut PgConnection,
    event: EventId,
    job: JobId,
    agent: AgentId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, traceparent, status, last_error, finished_at)
         SELECT $1, $2, $3, id, endpoint_url, $5,
                CASE WHEN endpoint_disabled_at IS NULL THEN 'pending' ELSE 'dead' END,
                CASE WHEN endpoint_disabled_at IS NULL THEN NULL ELSE $6 END,
                CASE WHEN endpoint_disabled_at IS NULL THEN NULL ELSE now() END
         FROM agents WHERE id = $4",
        DeliveryId::generate().as_uuid(),
        event.as_uuid(),
        job.as_uuid(),
        agent.as_uuid(),
        shared::telemetry::current_traceparent(),
        shared::webhooks::ENDPOINT_DISABLED,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// A delivery of `event` to the job's callback URL, when it has one.
pub async fn deliver_to_callback(tx: &mut PgConnection, event: EventId, job: JobId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO webhook_deliveries (id, event_id, job_id, client_id, target_url, traceparent)
         SELECT $1, $2, id, client_id, callback_url, $4 FROM jobs WHERE id = $3 AND callback_url IS NOT NULL",
        DeliveryId::generate().as_uuid(),
        event.as_uuid(),
        job.as_uuid(),
        shared::telemetry::current_traceparent(),
    )
    .execute(tx)
    .await?;
    Ok(())
}
