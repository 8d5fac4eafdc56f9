//! The lease on a delivery: only one push sends a given attempt at a time,
//! a final delivery is never sent again, and a push whose attempt is already
//! recorded (Cloud Tasks delivers at least once) is not sent twice. The lease
//! carries a token: only its holder releases it or records its attempt, and
//! a later push may take over a lease that lapsed (its holder died).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use shared::batches::{Batched, Statement, column};
use shared::delivery_tasks::Push;
use shared::domain::{AgentId, ClientId, DeliveryStatus};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A leased delivery: what sending it needs.
pub struct Leased {
    pub token: Uuid,
    /// The attempt this push makes (from our records: attempts made + 1).
    pub attempt: i32,
    pub target_url: String,
    pub agent_id: Option<Uuid>,
    pub event_id: Uuid,
    pub event_type: String,
    pub data: serde_json::Value,
    pub occurred_at: OffsetDateTime,
    /// The recipient's webhook secret, sealed (`shared::sealing`) for `owner`.
    pub sealed_secret: Vec<u8>,
    /// During a rotation's grace period the replaced secret signs too.
    pub previous_sealed_secret: Option<Vec<u8>>,
    /// The recipient's prefixed id (`agt_…`, `cli_…`): the secrets' associated data.
    pub owner: String,
    pub endpoint_disabled: bool,
    /// Until when the target URL is paced (`None`: it is not).
    pub paced_until: Option<OffsetDateTime>,
    /// Times this attempt was put off for want of a send slot.
    pub deferrals: i32,
    /// When this round of sending began (`None`: the relay has not marked it yet).
    pub dispatched_at: Option<OffsetDateTime>,
}

/// Takes the lease when the push is for the delivery's current generation
/// and next attempt, and nobody else holds it: `None` otherwise. Leases of
/// concurrent pushes are taken in shared statements (`batches`).
pub async fn take(leases: &Batched<Leases>, push: &Push) -> sqlx::Result<Option<Leased>> {
    let wanted = Wanted {
        delivery_id: push.delivery_id.as_uuid(),
        generation: push.generation,
        attempt: push.attempt,
        token: Uuid::new_v4(),
    };
    leases.run(wanted).await
}

/// A push's request for its delivery's lease, under a token of its own.
pub struct Wanted {
    delivery_id: Uuid,
    generation: i32,
    /// The attempt the push is for (`None`: the next one).
    attempt: Option<i32>,
    token: Uuid,
}

/// Takes leases for `hold`, any number at once: a [`Statement`].
///
/// Committed asynchronously (no wait for the WAL flush): a lease lost to a
/// Postgres crash only lets the attempt be sent again, which at-least-once
/// delivery allows; the attempt's record flushes the lease with it (a
/// failure's synchronously; a success's is as redoable as the lease).
pub struct Leases {
    pub hold: Duration,
}

impl Statement for Leases {
    type Input = Wanted;
    type Output = Option<Leased>;

    fn lock_order(a: &Wanted, b: &Wanted) -> Ordering {
        a.delivery_id.cmp(&b.delivery_id)
    }

    /// A few milliseconds more before a webhook goes out go unnoticed.
    const GATHER: Duration = Duration::from_millis(5);

    async fn run(&self, db: &PgPool, wanted: &[Wanted]) -> sqlx::Result<Vec<Option<Leased>>> {
        // Two pushes of one delivery in one statement: the update takes one
        // of them, and only its token comes back.
        let rows = sqlx::query!(
            r#"WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
               wanted AS (
                   SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::uuid[]) AS w(delivery_id, generation, attempt, token)
               )
               UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $5), lease_token = w.token
               FROM wanted w, events e
               WHERE EXISTS (SELECT FROM async_commit)
                 AND d.id = w.delivery_id AND d.generation = w.generation AND e.id = d.event_id
                 AND d.status IN ('pending', 'dispatched')
                 AND (w.attempt IS NULL OR d.attempts = w.attempt - 1)
                 AND (d.lease_until IS NULL OR d.lease_until < now())
               RETURNING w.token AS "token!", d.attempts + 1 AS "attempt!", d.deferrals, d.dispatched_at, d.target_url,
                         d.agent_id, d.client_id, e.id AS event_id, e.type AS event_type, e.data, e.occurred_at,
                         (SELECT COALESCE(a.webhook_secret_sealed, c.webhook_secret_sealed)
                          FROM (SELECT 1) one
                          LEFT JOIN agents a ON a.id = d.agent_id
                          LEFT JOIN clients c ON c.id = d.client_id) AS "sealed_secret!",
                         (SELECT a.previous_webhook_secret_sealed FROM agents a
                          WHERE a.id = d.agent_id AND a.previous_webhook_secret_expires_at > now()) AS previous_sealed_secret,
                         (SELECT a.endpoint_disabled_at IS NOT NULL FROM agents a WHERE a.id = d.agent_id) AS endpoint_disabled,
                         (SELECT h.retry_at FROM endpoint_health h WHERE h.url = d.target_url) AS paced_until"#,
            &column(wanted, |wanted| wanted.delivery_id),
            &column(wanted, |wanted| wanted.generation),
            &column(wanted, |wanted| wanted.attempt) as &[Option<i32>],
            &column(wanted, |wanted| wanted.token),
            self.hold.as_secs_f64(),
        )
        .fetch_all(db)
        .await?;
        let mut leased: HashMap<Uuid, Leased> = rows
            .into_iter()
            .map(|row| {
                let lease = Leased {
                    // Exactly one recipient (a constraint); no owner opens nothing.
                    owner: match (row.agent_id, row.client_id) {
                        (Some(agent), _) => AgentId::from_uuid(agent).to_string(),
                        (None, Some(client)) => ClientId::from_uuid(client).to_string(),
                        (None, None) => String::new(),
                    },
                    token: row.token,
                    attempt: row.attempt,
                    target_url: row.target_url,
                    agent_id: row.agent_id,
                    event_id: row.event_id,
                    event_type: row.event_type,
                    data: row.data,
                    occurred_at: row.occurred_at,
                    sealed_secret: row.sealed_secret,
                    previous_sealed_secret: row.previous_sealed_secret,
                    endpoint_disabled: row.endpoint_disabled == Some(true),
                    paced_until: row.paced_until,
                    deferrals: row.deferrals,
                    dispatched_at: row.dispatched_at,
                };
                (lease.token, lease)
            })
            .collect();
        Ok(wanted.iter().map(|wanted| leased.remove(&wanted.token)).collect())
    }
}

/// Gives the lease back unused (best effort: it lapses anyway, so it
/// commits asynchronously too).
pub async fn release(db: &PgPool, push: &Push, token: Uuid) {
    let release = sqlx::query!(
        "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
         UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL
         WHERE EXISTS (SELECT FROM async_commit) AND id = $1 AND generation = $2 AND lease_token = $3",
        push.delivery_id.as_uuid(),
        push.generation,
        token,
    );
    if let Err(error) = release.execute(db).await {
        tracing::warn!(%error, delivery_id = %push.delivery_id, "cannot release a delivery's lease");
    }
}

/// Where a delivery stands, for a push that could not take the lease.
pub struct Current {
    pub status: DeliveryStatus,
    pub generation: i32,
    pub attempts: i32,
    pub task_name: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub traceparent: Option<String>,
}

pub async fn current(db: &PgPool, push: &Push) -> sqlx::Result<Option<Current>> {
    sqlx::query_as!(
        Current,
        r#"SELECT status AS "status: DeliveryStatus", generation, attempts, task_name, next_attempt_at, traceparent
           FROM webhook_deliveries WHERE id = $1"#,
        push.delivery_id.as_uuid()
    )
    .fetch_optional(db)
    .await
}
