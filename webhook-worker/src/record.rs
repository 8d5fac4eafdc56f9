//! What the lease holder writes: an attempt (the attempt row, the
//! delivery's new status and next attempt, the agent endpoint's health and
//! the URL's pacing: one statement on a success, one transaction on a
//! failure), a deferral, or a death unsent. It records what `policy`
//! decided, and decides nothing itself.

use shared::delivery_tasks::Push;
use shared::domain::{AgentId, DeliveryStatus, Outcome};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::lease::Leased;
use crate::next_attempt::Next;
use crate::policy::{Decision, Policy};
use crate::send::Sent;
use crate::{health, pacing};

/// One attempt, as sent.
pub struct Attempted<'a> {
    pub push: &'a Push,
    pub leased: &'a Leased,
    pub started: OffsetDateTime,
    pub latency_ms: i32,
    pub sent: &'a Sent,
}

/// Records the attempt as `policy` decides it; returns the decision, or
/// `None` when the lease was lost meanwhile (it lapsed and another push
/// took the delivery over): that push records instead. A success is one
/// statement; a failure also extends the agent endpoint's run of failures
/// (which the decision reads), may disable the endpoint, and paces the URL,
/// in one transaction.
pub async fn attempt(db: &PgPool, attempted: Attempted<'_>, policy: &Policy) -> anyhow::Result<Option<Decision>> {
    let Attempted { push, leased, started, sent, .. } = &attempted;
    if sent.succeeded() {
        let decision = policy.after_send(push, leased.attempt, sent, None, OffsetDateTime::now_utc());
        return Ok(write(db, &attempted, &decision).await?.then_some(decision));
    }
    let mut tx = db.begin().await?;
    let agent = leased.agent_id.map(AgentId::from_uuid);
    let endpoint = match agent {
        Some(agent) => health::failed(&mut tx, agent, &leased.target_url, *started).await?,
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let decision = policy.after_send(push, leased.attempt, sent, endpoint, now);
    if let (Some(because), Some(agent), Some(run)) = (decision.disable_endpoint, agent, endpoint) {
        health::disable(&mut tx, agent, &leased.target_url, run, because, now).await?;
    }
    if !write(&mut *tx, &attempted, &decision).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    if let Some(until) = decision.pace_until {
        pacing::hold_back(&mut tx, &leased.target_url, until).await?;
    }
    tx.commit().await?;
    Ok(Some(decision))
}

/// One statement: the delivery (by the lease holder only), its attempt,
/// and on a success the end of its URL's pacing and of its agent
/// endpoint's run of failures. False when the lease was lost.
///
/// A success commits asynchronously (no wait for the WAL flush): losing it
/// to a Postgres crash leaves the delivery dispatched with no task, and the
/// sweep (`api::background::maintenance`) sends it again, which at-least-once delivery
/// allows (same `webhook-id`). A failure's record commits synchronously: the
/// next attempt's task is named after it.
async fn write(db: impl PgExecutor<'_>, attempted: &Attempted<'_>, decision: &Decision) -> sqlx::Result<bool> {
    let Attempted { push, leased, started, latency_ms, sent } = attempted;
    let Decision { outcome, next, error, .. } = decision;
    let recorded = sqlx::query!(
        "WITH async_commit AS (SELECT set_config('synchronous_commit', CASE WHEN $15 THEN 'off' ELSE current_setting('synchronous_commit') END, true)),
         updated AS (
             UPDATE webhook_deliveries
             SET status = $2, attempts = $3, last_error = $4, last_outcome = $14, lease_until = NULL, lease_token = NULL,
                 finished_at = CASE WHEN $5 THEN now() ELSE finished_at END,
                 next_attempt_at = $6, task_name = COALESCE($7, task_name), deferrals = 0,
                 -- A push can come before the relay marked the row (a task from an earlier try).
                 dispatched_at = COALESCE(dispatched_at, now())
             WHERE EXISTS (SELECT FROM async_commit) AND id = $1 AND generation = $8 AND lease_token = $9
             RETURNING id
         ), unpaced AS (
             DELETE FROM endpoint_health WHERE $15 AND url = $16 AND EXISTS (SELECT 1 FROM updated)
         ), healthy AS (
             UPDATE agents SET endpoint_failing_since = NULL
             WHERE $15 AND id = $17 AND endpoint_url = $16 AND endpoint_failing_since IS NOT NULL
               AND EXISTS (SELECT 1 FROM updated)
         )
         INSERT INTO delivery_attempts
             (delivery_id, generation, attempt, started_at, latency_ms, response_status, response_body, error, outcome)
         SELECT id, $8, $3, $10, $11, $12, $13, $4, $14 FROM updated",
        push.delivery_id.as_uuid(),
        outcome.delivery_status() as DeliveryStatus,
        leased.attempt,
        error.as_deref(),
        *outcome != Outcome::Retry,
        next.as_ref().map(|next| next.at),
        next.as_ref().map(|next| next.task_name.as_str()),
        push.generation,
        leased.token,
        started,
        latency_ms,
        sent.status.map(i32::from),
        sent.body,
        *outcome as Outcome,
        *outcome == Outcome::Delivered,
        leased.target_url,
        leased.agent_id,
    )
    .execute(db)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// The delivery dies unsent, `why` (the endpoint is disabled, or its URL was
/// paced for longer than the delivery's schedule).
pub async fn killed_unsent(db: &PgPool, push: &Push, token: Uuid, why: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = 'dead', last_error = $3, lease_until = NULL, lease_token = NULL, next_attempt_at = NULL,
             finished_at = now()
         WHERE id = $1 AND generation = $2 AND lease_token = $4",
        push.delivery_id.as_uuid(),
        push.generation,
        why,
        token,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The attempt is put off to `next` (a deferral, counted); false when the
/// lease was lost meanwhile.
pub async fn deferred(db: &PgPool, push: &Push, token: Uuid, next: &Next) -> sqlx::Result<bool> {
    let deferred = sqlx::query!(
        "UPDATE webhook_deliveries
         SET lease_until = NULL, lease_token = NULL, next_attempt_at = $4, task_name = $5,
             status = 'dispatched', dispatched_at = COALESCE(dispatched_at, now()), deferrals = deferrals + 1
         WHERE id = $1 AND generation = $2 AND lease_token = $3",
        push.delivery_id.as_uuid(),
        push.generation,
        token,
        next.at,
        next.task_name,
    )
    .execute(db)
    .await?;
    Ok(deferred.rows_affected() == 1)
}
