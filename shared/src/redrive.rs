//! Starting finished deliveries over, as a new round of sending. Three ways
//! in, one statement ([`start_new_round`]): the recipient resends one
//! delivery (through the API, capped), the recipient recovers its dead
//! deliveries since a time (through the API), and an operator redrives them
//! (`cargo xtask redrive`); the last two share [`redrive`].
//!
//! A new round is a new generation: pushes of the old task are ignored, the
//! new task gets a new name, the attempts count from 1 again, it goes to the
//! agent's endpoint as it is now, and it reaches the dead-letter topic again
//! if it dies again.

use std::fmt;

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{AgentId, ClientId};

/// A recipient resends one delivery at most this many times,
pub const MAX_RESENDS: i32 = 20;
/// and at most once in this many seconds.
pub const RESEND_INTERVAL_SECONDS: i64 = 60;

/// Whose deliveries: an agent's (to its endpoint) or a client's (its job
/// callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Agent(AgentId),
    Client(ClientId),
}

impl Recipient {
    /// `webhook_deliveries.agent_id` and `client_id` as this recipient has them.
    pub fn columns(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Self::Agent(agent) => (Some(agent.as_uuid()), None),
            Self::Client(client) => (None, Some(client.as_uuid())),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(agent) => agent.fmt(f),
            Self::Client(client) => client.fmt(f),
        }
    }
}

/// Why a delivery starts over, which decides what it may start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// The recipient resends a delivered or dead delivery: counted against
    /// [`MAX_RESENDS`] and [`RESEND_INTERVAL_SECONDS`].
    Resend,
    /// Dead deliveries queued again in bulk (recover, redrive): not counted.
    Redrive,
}

/// Starts a new round for those of `ids` that `recipient` receives and that
/// `restart` may start, never while the agent's endpoint is disabled (they
/// would die again unsent); returns how many started. One conditional
/// statement: of two racing resends the second re-checks the row the first
/// changed, no longer matches, and starts nothing.
pub async fn start_new_round(
    db: impl PgExecutor<'_>,
    recipient: Recipient,
    ids: &[Uuid],
    restart: Restart,
    traceparent: Option<&str>,
) -> sqlx::Result<u64> {
    let (agent, client) = recipient.columns();
    let started = sqlx::query!(
        "UPDATE webhook_deliveries d
         SET status = 'pending', generation = d.generation + 1, attempts = 0, lease_until = NULL, lease_token = NULL,
             next_attempt_at = NULL, task_name = NULL, deferrals = 0, finished_at = NULL, dispatched_at = NULL,
             dead_lettered_at = NULL, traceparent = $5,
             -- To the agent's endpoint as it is now, not as it was.
             target_url = COALESCE((SELECT a.endpoint_url FROM agents a WHERE a.id = d.agent_id), d.target_url),
             resends = d.resends + CASE WHEN $4 THEN 1 ELSE 0 END,
             resent_at = CASE WHEN $4 THEN now() ELSE d.resent_at END
         WHERE d.id = ANY($1) AND (d.agent_id = $2 OR d.client_id = $3)
           AND (d.status = 'dead' OR ($4 AND d.status = 'delivered'))
           AND (NOT $4 OR (d.resends < $6 AND (d.resent_at IS NULL OR d.resent_at <= now() - make_interval(secs => $7::bigint))))
           AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = d.agent_id AND a.endpoint_disabled_at IS NOT NULL)",
        ids,
        agent,
        client,
        restart == Restart::Resend,
        traceparent,
        MAX_RESENDS,
        RESEND_INTERVAL_SECONDS,
    )
    .execute(db)
    .await?;
    Ok(started.rows_affected())
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no recipient {0}")]
    NoSuchRecipient(Recipient),
    #[error(
        "agent {0}'s endpoint is disabled: its owner must enable it first, or the deliveries would die again unsent"
    )]
    EndpointDisabled(AgentId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Which dead deliveries to queue again: `recipient`'s that died at or after
/// `since` (and before `until`), oldest death first, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Redrive {
    pub recipient: Recipient,
    pub since: OffsetDateTime,
    pub until: Option<OffsetDateTime>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    /// Queued again (or, in a dry run, that would be).
    pub queued: u64,
    /// More dead deliveries remain in the window, beyond the limit.
    pub more: bool,
}

/// Queues the deliveries `redrive` names again, each as a new round (see
/// [`start_new_round`]) joining `traceparent`; a `dry_run` only counts them.
/// On the pool, or in the caller's transaction (the API's, bound to the
/// signing key).
pub async fn redrive(
    db: &mut PgConnection,
    redrive: Redrive,
    traceparent: Option<&str>,
    dry_run: bool,
) -> Result<Redriven, RedriveError> {
    let Redrive { recipient, since, until, limit } = redrive;
    let (agent, client) = recipient.columns();
    let endpoint_disabled = sqlx::query_scalar!(
        r#"SELECT endpoint_disabled_at IS NOT NULL AS "disabled!" FROM agents WHERE id = $1
           UNION ALL SELECT false FROM clients WHERE id = $2"#,
        agent,
        client,
    )
    .fetch_optional(&mut *db)
    .await?;
    match (endpoint_disabled, recipient) {
        (None, _) => return Err(RedriveError::NoSuchRecipient(recipient)),
        (Some(true), Recipient::Agent(agent)) => return Err(RedriveError::EndpointDisabled(agent)),
        (Some(_), _) => {}
    }
    // One more than the limit, to know whether more remain.
    let mut dead = dead_between(&mut *db, recipient, since, until, i64::from(limit) + 1).await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = dead.len() > limit;
    dead.truncate(limit);
    let queued = if dry_run {
        u64::try_from(dead.len()).unwrap_or(u64::MAX)
    } else {
        start_new_round(&mut *db, recipient, &dead, Restart::Redrive, traceparent).await?
    };
    Ok(Redriven { queued, more })
}

/// The ids of `recipient`'s deliveries that died in [`since`, `until`),
/// oldest death first, at most `limit`. One statement per kind of
/// recipient, so each walks its own index.
async fn dead_between(
    db: &mut PgConnection,
    recipient: Recipient,
    since: OffsetDateTime,
    until: Option<OffsetDateTime>,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    match recipient {
        Recipient::Agent(agent) => sqlx::query_scalar!(
            "SELECT id FROM webhook_deliveries WHERE agent_id = $1 AND status = 'dead' AND finished_at >= $2 AND ($3::timestamptz IS NULL OR finished_at < $3)
             ORDER BY finished_at LIMIT $4",
            agent.as_uuid(), since, until, limit).fetch_all(db).await,
        Recipient::Client(client) => sqlx::query_scalar!(
            "SELECT id FROM webhook_deliveries WHERE client_id = $1 AND status = 'dead' AND finished_at >= $2 AND ($3::timestamptz IS NULL OR finished_at < $3)
             ORDER BY finished_at LIMIT $4",
            client.as_uuid(), since, until, limit).fetch_all(db).await,
    }
}
