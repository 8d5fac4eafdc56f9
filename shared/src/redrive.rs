//! Redrive: send again the dead deliveries to one agent's endpoint, after an
//! outage the agent has fixed. An operator runs it (`cargo xtask redrive`);
//! the owner resends single deliveries through the API.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::domain::AgentId;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no agent {0}")]
    NoSuchAgent(AgentId),
    #[error(
        "agent {0}'s endpoint is disabled: its owner must enable it first, or the deliveries would die again unsent"
    )]
    EndpointDisabled(AgentId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The deliveries to `agent`'s endpoint that died at or after `since`: how
/// many there are, and (unless `dry_run`) queues each again as a new
/// generation, to the endpoint's current URL, so the relay gives it a new
/// Cloud Tasks task with a fresh round of attempts, and it reaches the
/// dead-letter topic again if it dies again.
pub async fn redrive(db: &PgPool, agent: AgentId, since: OffsetDateTime, dry_run: bool) -> Result<u64, RedriveError> {
    let endpoint = sqlx::query!(
        r#"SELECT endpoint_disabled_at IS NOT NULL AS "disabled!", endpoint_url FROM agents WHERE id = $1"#,
        agent.as_uuid()
    )
    .fetch_optional(db)
    .await?;
    let endpoint_url = match endpoint {
        None => return Err(RedriveError::NoSuchAgent(agent)),
        Some(endpoint) if endpoint.disabled => return Err(RedriveError::EndpointDisabled(agent)),
        Some(endpoint) => endpoint.endpoint_url,
    };
    let count = sqlx::query_scalar!(
        r#"WITH dead AS (
               SELECT id FROM webhook_deliveries WHERE agent_id = $1 AND status = 'dead' AND finished_at >= $2
           ), redriven AS (
               UPDATE webhook_deliveries d
               SET status = 'pending', generation = generation + 1, lease_until = NULL, finished_at = NULL,
                   dispatched_at = NULL, dead_lettered_at = NULL, traceparent = NULL, target_url = $4
               FROM dead WHERE d.id = dead.id AND NOT $3 AND d.status = 'dead'
               RETURNING d.id
           )
           SELECT CASE WHEN $3 THEN (SELECT count(*) FROM dead) ELSE (SELECT count(*) FROM redriven) END AS "count!""#,
        agent.as_uuid(),
        since,
        dry_run,
        endpoint_url,
    )
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(count).unwrap_or_default())
}
