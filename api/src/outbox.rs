//! The outbox: a state change, its event and the webhook deliveries it
//! causes are written in one transaction, so nothing acknowledged is lost
//! whatever fails afterwards. The relay takes it from there, in the trace of
//! the request that wrote the delivery (its `traceparent` is stored with it).

use serde::Serialize;
use shared::domain::{AgentId, DeliveryId, EventId, JobId};
use sqlx::PgConnection;
use uuid::Uuid;

/// Records an event about `aggregate` (e.g. a job) and returns its id.
pub async fn record_event(
    tx: &mut PgConnection,
    aggregate: Uuid,
    event_type: &str,
    data: &impl Serialize,
) -> Result<EventId, sqlx::Error> {
    let id = EventId::generate();
    let data = serde_json::to_value(data).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!(
        "INSERT INTO events (id, aggregate_id, type, data) VALUES ($1, $2, $3, $4)",
        id.as_uuid(),
        aggregate,
        event_type,
        data
    )
    .execute(tx)
    .await?;
    Ok(id)
}

/// A delivery of `event` to the agent's endpoint, unless the endpoint was
/// disabled (it answered 410 Gone).
pub async fn deliver_to_agent(
    tx: &mut PgConnection,
    event: EventId,
    job: JobId,
    agent: AgentId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, traceparent)
         SELECT $1, $2, $3, id, endpoint_url, $5 FROM agents WHERE id = $4 AND endpoint_disabled_at IS NULL",
        DeliveryId::generate().as_uuid(),
        event.as_uuid(),
        job.as_uuid(),
        agent.as_uuid(),
        shared::telemetry::current_traceparent(),
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
