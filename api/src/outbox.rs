//! The outbox: a state change, its event (`shared::events::record`) and the
//! webhook deliveries it causes are written in one transaction, so nothing
//! acknowledged is lost whatever fails afterwards. The relay (deliveries →
//! Cloud Tasks) and the publisher (events → Pub/Sub) take it from there; a
//! delivery carries the `traceparent` of the request that wrote it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use shared::domain::{AgentId, DeliveryId, EventId, JobId};
use sqlx::PgConnection;
use tokio::sync::{Notify, watch};

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

/// The shortest time between two relay or publisher rounds that were not
/// full. Under load a round then takes what many requests wrote, instead of
/// one round (and its statements) per request; an idle system's first write
/// is taken at once.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// How the relay and the publisher wait after a round: `full` (more is
/// waiting) goes on at once; `Ok(false)` waits for a wake (a commit) or
/// `poll`, but at least [`BATCH_WINDOW`]; a failure waits `retry` whatever
/// wakes it, so an outage does not turn every write into a round of failing
/// calls. False once `stopping` turns true.
pub async fn wait_for_next_round(
    round: &anyhow::Result<bool>,
    woken: impl Future<Output = ()>,
    poll: Duration,
    retry: Duration,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let pause = match round {
        Ok(true) => return !*stopping.borrow(),
        Ok(false) => BATCH_WINDOW,
        Err(_) => retry,
    };
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = stopping.wait_for(|stopping| *stopping) => return false,
    }
    if round.is_err() {
        return true;
    }
    tokio::select! {
        () = woken => true,
        () = tokio::time::sleep(poll.saturating_sub(BATCH_WINDOW)) => true,
        _ = stopping.wait_for(|stopping| *stopping) => false,
    }
}

/// The result of one relay or publisher round that handled `done` rows:
/// an error only when nothing went through, so a partial outage still
/// makes progress (and is logged).
pub fn round_result(done: usize, failure: Option<anyhow::Error>, what: &str) -> anyhow::Result<usize> {
    match failure {
        Some(error) if done == 0 => Err(error.context(what.to_owned())),
        Some(error) => {
            tracing::warn!(error = format!("{error:#}"), done, "some {what}");
            Ok(done)
        }
        None => Ok(done),
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
