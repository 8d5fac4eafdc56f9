//! Starting finished deliveries over, as a new round of sending. Three ways
//! in, one statement ([`start_new_round`]): the recipient resends one
//! delivery (through the API, capped), the recipient recovers its dead
//! deliveries since a time (through the API), and an operator redrives them
//! (`cargo xtask redrive`); the last two share [`redrive`].
//!
//! A new round is a new generation: pushes of the old task are ignored, the
//! new task gets a new name, the attempts count from 1 again, it goes to the
//! agent's endpoint as it is now, and it reaches the dead-letter topic again
//! if it dies again. It is queued as of now (`queued_at`), so the relay
//! takes it after what was queued before it, whenever it was created.
//!
//! Every new round counts toward one cap per delivery, [`MAX_ROUNDS`],
//! whichever way it started; and a delivery the egress policy refused
//! (its last attempt `refused`) is not started over while it would go to
//! the same URL: an agent's only once its endpoint is another URL, a job
//! callback never (its URL cannot change).

use std::fmt;

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{AgentId, ClientId};

/// New rounds one delivery may have after its first: resends, recoveries
/// and redrives together (`webhook_deliveries.resends` counts them).
pub const MAX_ROUNDS: i32 = 20;
/// A recipient resends one delivery at most once in this many seconds.
pub const RESEND_INTERVAL_SECONDS: i64 = 60;

/// Whose deliveries: an agent's (to its endpoint) or a client's (its job
/// callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Agent(AgentId),
    Client(ClientId),
}

impl Recipient {
    pub fn is_client(self) -> bool {
        matches!(self, Self::Client(_))
    }

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
    /// The recipient resends a delivered or dead delivery, at most once per
    /// [`RESEND_INTERVAL_SECONDS`].
    Resend,
    /// Dead deliveries queued again in bulk (recover, redrive).
    Redrive,
}

/// Starts a new round for those of `ids` that `recipient` receives and that
/// `restart` may start, below [`MAX_ROUNDS`], never while the agent's
/// endpoint is disabled (they would die again unsent) nor to a URL the egress
/// policy refused; returns how many started. One conditional
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
             dead_lettered_at = NULL, traceparent = $5, queued_at = now(), last_outcome = NULL,
             -- To the agent's endpoint as it is now, not as it was.
             target_url = COALESCE((SELECT a.endpoint_url FROM agents a WHERE a.id = d.agent_id), d.target_url),
             resends = d.resends + 1,
             resent_at = CASE WHEN $4 THEN now() ELSE d.resent_at END
         WHERE d.id = ANY($1) AND (d.agent_id = $2 OR d.client_id = $3)
           AND (d.status = 'dead' OR ($4 AND d.status = 'delivered'))
           AND d.resends < $6
           AND (NOT $4 OR d.resent_at IS NULL OR d.resent_at <= now() - make_interval(secs => $7::bigint))
           AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = d.agent_id AND a.endpoint_disabled_at IS NOT NULL)
           AND (d.last_outcome IS DISTINCT FROM 'refused'
                OR d.target_url <> (SELECT a.endpoint_url FROM agents a WHERE a.id = d.agent_id))",
        ids,
        agent,
        client,
        restart == Restart::Resend,
        traceparent,
        MAX_ROUNDS,
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
    /// Dead deliveries in the window left dead: they had [`MAX_ROUNDS`]
    /// rounds already (counted up to the limit).
    pub at_cap: u64,
    /// And those the egress policy refused, whose URL is still the same
    /// (counted up to the limit).
    pub refused: u64,
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
    let (at_cap, refused) = left_dead(&mut *db, recipient, since, until, i64::from(limit)).await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = dead.len() > limit;
    dead.truncate(limit);
    let queued = if dry_run {
        u64::try_from(dead.len()).unwrap_or(u64::MAX)
    } else {
        start_new_round(&mut *db, recipient, &dead, Restart::Redrive, traceparent).await?
    };
    Ok(Redriven { queued, more, at_cap, refused })
}

/// The ids of `recipient`'s deliveries that died in [`since`, `until`) and
/// may start over (below [`MAX_ROUNDS`], not refused to the URL they would
/// go to), oldest death first, at most `limit`. One statement per kind of
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
               AND resends < $5
               AND (last_outcome IS DISTINCT FROM 'refused' OR target_url <> (SELECT endpoint_url FROM agents WHERE id = $1))
             ORDER BY finished_at LIMIT $4",
            agent.as_uuid(), since, until, limit, MAX_ROUNDS).fetch_all(db).await,
        Recipient::Client(client) => sqlx::query_scalar!(
            "SELECT id FROM webhook_deliveries WHERE client_id = $1 AND status = 'dead' AND finished_at >= $2 AND ($3::timestamptz IS NULL OR finished_at < $3)
               AND resends < $5 AND last_outcome IS DISTINCT FROM 'refused'
             ORDER BY finished_at LIMIT $4",
            client.as_uuid(), since, until, limit, MAX_ROUNDS).fetch_all(db).await,
    }
}

/// How many of `recipient`'s deliveries that died in [`since`, `until`)
/// stay dead, each counted up to `limit`: those at [`MAX_ROUNDS`], and those
/// the egress policy refused whose URL is still the same.
async fn left_dead(
    db: &mut PgConnection,
    recipient: Recipient,
    since: OffsetDateTime,
    until: Option<OffsetDateTime>,
    limit: i64,
) -> sqlx::Result<(u64, u64)> {
    let (agent, client) = recipient.columns();
    let left = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE at_cap) AS "at_cap!", count(*) FILTER (WHERE NOT at_cap) AS "refused!"
           FROM (SELECT d.resends >= $5 AS at_cap FROM webhook_deliveries d
                 WHERE (d.agent_id = $1 OR d.client_id = $2) AND d.status = 'dead' AND d.finished_at >= $3
                   AND ($4::timestamptz IS NULL OR d.finished_at < $4)
                   AND (d.resends >= $5 OR (d.last_outcome = 'refused'
                        AND d.target_url = COALESCE((SELECT a.endpoint_url FROM agents a WHERE a.id = d.agent_id), d.target_url)))
                 LIMIT $6) left_dead"#,
        agent,
        client,
        since,
        until,
        MAX_ROUNDS,
        limit.saturating_mul(2),
    )
    .fetch_one(db)
    .await?;
    let count = |left: i64| u64::try_from(left.min(limit)).unwrap_or(0);
    Ok((count(left.at_cap), count(left.refused)))
}
