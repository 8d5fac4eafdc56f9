//! What the lease holder writes: an attempt (the attempt row, the
//! delivery's new status and next attempt, the agent endpoint's health and
//! the URL's pacing: `attempts::write`, with other pushes' successes, or in
//! one transaction on a failure), a deferral, or a death unsent. It records
//! what `policy` decided, and decides nothing itself.

use shared::batches::Batched;
use shared::delivery_tasks::Push;
use shared::domain::AgentId;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts::{self, AttemptRecord, Commit, Successes};
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
/// took the delivery over): that push records instead. A success is
/// written with other pushes' successes (`Successes`); a failure also extends
/// the agent endpoint's run of failures (which the decision reads), may
/// disable the endpoint, and paces the URL, in one transaction.
pub async fn attempt(
    db: &PgPool,
    successes: &Batched<Successes>,
    attempted: Attempted<'_>,
    policy: &Policy,
) -> anyhow::Result<Option<Decision>> {
    let Attempted { push, leased, started, sent, .. } = &attempted;
    if sent.succeeded() {
        let decision = policy.after_send(push, leased.attempt, sent, None, OffsetDateTime::now_utc());
        return Ok(successes.run(record_of(&attempted, &decision)).await?.then_some(decision));
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
    let record = record_of(&attempted, &decision);
    if attempts::write(&mut *tx, &[record], Commit::AsConfigured).await?.is_empty() {
        tx.rollback().await?;
        return Ok(None);
    }
    if let Some(until) = decision.pace_until {
        pacing::hold_back(&mut tx, &leased.target_url, until).await?;
    }
    tx.commit().await?;
    Ok(Some(decision))
}

/// The record of `attempted` as `decision` decides it.
fn record_of(attempted: &Attempted<'_>, decision: &Decision) -> AttemptRecord {
    let Attempted { push, leased, started, latency_ms, sent } = attempted;
    AttemptRecord {
        delivery_id: push.delivery_id.as_uuid(),
        generation: push.generation,
        lease_token: leased.token,
        status: decision.outcome.delivery_status(),
        attempt: leased.attempt,
        error: decision.error.clone(),
        next_at: decision.next.as_ref().map(|next| next.at),
        task_name: decision.next.as_ref().map(|next| next.task_name.clone()),
        started_at: *started,
        latency_ms: *latency_ms,
        response_status: sent.status.map(i32::from),
        response_body: sent.body.clone(),
        outcome: decision.outcome,
        target_url: leased.target_url.clone(),
        agent_id: leased.agent_id,
    }
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
