//! SQL for jobs. Transitions are single conditional updates, so two racing
//! transitions cannot both win.

use rust_decimal::Decimal;
use shared::domain::{ClientId, DeliveryId, EventId, JobId, JobStatus, JobTransition, JobWindow};
use shared::events;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::resources::job::{Job, JobRow};

/// A job to create: the job as it will be answered (already checked), and
/// what is stored beside it.
pub struct NewJob<'a> {
    pub job: &'a Job,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a [u8],
    /// The `job.created` event: its id and data (the job as created).
    pub event: (EventId, &'a serde_json::Value),
    /// Of the request's span, which the delivery's task continues.
    pub traceparent: Option<String>,
}

/// What creating a job came to.
pub enum Creation {
    /// The job, its event and its delivery were written.
    Created,
    /// The agent's terms allowed the job, but the client had already used
    /// its idempotency key: nothing was written.
    KeyUsed,
    /// Nothing was written: whether the signer's key was still the client's
    /// active key, and the agent's terms (`None`: no such agent, or the key
    /// was not).
    NotWritten { signer_current: bool, agent: Option<AgentTerms> },
}

pub struct AgentTerms {
    pub price: Decimal,
    pub active: bool,
}

/// Writes the job, its `job.created` event and the delivery to the agent's
/// endpoint in one statement, in its own transaction: the hot path's one
/// round trip instead of four. It opens with the check every owner write
/// makes ([`crate::http::auth::Signer`]): `signer_key` must still be the
/// client's active key, and the client's row is held `FOR KEY SHARE` until
/// the write commits. The job is written only when the agent, as the
/// statement reads it, is active and asks at least the price.
///
/// The agent's row is read, not locked: every job to a busy agent would
/// otherwise lock that one row (a page write, and a multixact per
/// overlapping job). So a change to the agent committed while the statement
/// runs (a deactivation, a new price, another endpoint, the endpoint
/// disabled or enabled) does not stop it: the job is written on the terms
/// the statement read and may commit after that change was answered, as if
/// it had come a moment sooner; a lock would have made it wait and read the
/// changed row. Such a job to a deactivated agent expires unaccepted, and a
/// delivery written dead for an endpoint enabled meanwhile is resent like
/// any dead one. Nothing checks the references again (no foreign keys: the
/// migration `hot_path_without_foreign_keys`): they are the rows read here.
/// The delivery follows [`crate::outbox::deliver_to_agent`]: dead from the
/// start while the endpoint is disabled.
///
/// A used idempotency key fails the whole statement on the key's unique
/// constraint. `ON CONFLICT DO NOTHING` would turn that rare replay into a
/// quiet "not written", but every insert would then pay for it: a
/// speculative insertion (a lock-manager token, an index probe before the
/// insert, and a confirmation record in the WAL). Postgres logs each such
/// replay as an error naming the client's id and key, not a secret.
#[tracing::instrument(name = "sql create job", skip_all)]
pub async fn create(db: &PgPool, new: &NewJob<'_>, signer_key: &[u8]) -> sqlx::Result<Creation> {
    let row = sqlx::query!(
        r#"WITH signer AS (
               SELECT FROM clients WHERE id = $2 AND active AND public_key = $19 FOR KEY SHARE
           ), agent AS (
               SELECT id, price, active, endpoint_url, endpoint_disabled_at FROM agents
               WHERE id = $3 AND EXISTS (SELECT FROM signer)
           ), job AS (
               INSERT INTO jobs (id, client_id, agent_id, input, price, fee, callback_url, idempotency_key, request_hash,
                                 accept_by, deadline, created_at, updated_at)
               SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $17, $18, $10, $10 FROM agent WHERE active AND price >= $5
               RETURNING id
           ), event AS (
               INSERT INTO events (id, aggregate_type, aggregate_id, type, data)
               SELECT $11, 'job', id, $12, $13 FROM job
               RETURNING id
           ), delivery AS (
               INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, traceparent, status, last_error, finished_at)
               SELECT $14, event.id, $1, agent.id, agent.endpoint_url, $15,
                      CASE WHEN agent.endpoint_disabled_at IS NULL THEN 'pending' ELSE 'dead' END,
                      CASE WHEN agent.endpoint_disabled_at IS NULL THEN NULL ELSE $16 END,
                      CASE WHEN agent.endpoint_disabled_at IS NULL THEN NULL ELSE now() END
               FROM event, agent
           )
           SELECT EXISTS (SELECT FROM signer) AS "signer_current!", agent.price AS "agent_price?",
                  agent.active AS "agent_active?", EXISTS (SELECT FROM job) AS "created!"
           FROM (VALUES (true)) AS one LEFT JOIN agent ON true"#,
        new.job.id.as_uuid(),
        new.job.client_id.as_uuid(),
        new.job.agent_id.as_uuid(),
        &new.job.input,
        new.job.price.value(),
        new.job.fee.value(),
        new.job.callback_url.as_deref(),
        new.idempotency_key,
        new.request_hash,
        new.job.created_at,
        new.event.0.as_uuid(),
        events::JOB_CREATED,
        new.event.1,
        DeliveryId::generate().as_uuid(),
        new.traceparent,
        shared::webhooks::ENDPOINT_DISABLED,
        new.job.accept_by,
        new.job.deadline,
        signer_key,
    )
    .fetch_one(db)
    .await;
    let row = match row {
        Err(sqlx::Error::Database(error)) if error.constraint() == Some(IDEMPOTENCY_KEY_UNIQUE) => {
            return Ok(Creation::KeyUsed);
        }
        row => row?,
    };
    if row.created {
        return Ok(Creation::Created);
    }
    let agent = row.agent_price.zip(row.agent_active).map(|(price, active)| AgentTerms { price, active });
    Ok(Creation::NotWritten { signer_current: row.signer_current, agent })
}

/// A client's idempotency keys are unique (`jobs`' constraint).
const IDEMPOTENCY_KEY_UNIQUE: &str = "jobs_idempotency_key_unique";

/// The job a client created with this idempotency key, and the hash of the
/// request that created it.
#[tracing::instrument(name = "sql find by idempotency key", skip_all)]
pub async fn find_by_idempotency_key(
    db: &PgPool,
    client: ClientId,
    key: &str,
) -> sqlx::Result<Option<(JobId, Vec<u8>)>> {
    let row = sqlx::query!(
        r#"SELECT id, request_hash AS "request_hash!" FROM jobs WHERE client_id = $1 AND idempotency_key = $2"#,
        client.as_uuid(),
        key,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| (JobId::from_uuid(row.id), row.request_hash)))
}

/// Moves the job if `party` (the agent for agent moves, the client for
/// cancel) owns it, it is in a status the transition starts from, and the
/// transition's window ([`JobTransition::window`]) has not passed: the same
/// conditions the expiry task's update negates, so under the row lock
/// exactly one of them moves the job.
#[tracing::instrument(name = "sql transition", skip_all)]
pub async fn transition(
    tx: &mut PgConnection,
    id: JobId,
    party: Uuid,
    transition: JobTransition,
    result: Option<&serde_json::Value>,
    failure_reason: Option<&str>,
) -> sqlx::Result<Option<JobRow>> {
    let from: Vec<String> = transition.from().iter().map(|status| status.as_str().to_owned()).collect();
    sqlx::query_as!(
        JobRow,
        "UPDATE jobs SET status = $4, result = COALESCE($5, result), failure_reason = COALESCE($6, failure_reason),
                         updated_at = now()
         WHERE id = $1 AND status = ANY($3) AND (CASE WHEN $7 THEN agent_id ELSE client_id END) = $2
           AND (NOT $8 OR accept_by IS NULL OR accept_by > now())
           AND (NOT $9 OR deadline IS NULL OR deadline > now())
         RETURNING id, client_id, agent_id, status, input, result, failure_reason, price, fee, callback_url,
                accept_by, deadline, expired_because, created_at, updated_at",
        id.as_uuid(),
        party,
        &from,
        transition.to().as_str(),
        result,
        failure_reason,
        transition.by_agent(),
        transition.window() == Some(JobWindow::AcceptWindow),
        transition.window() == Some(JobWindow::Deadline),
    )
    .fetch_optional(tx)
    .await
}

/// Jobs where `party` is the client (or, with `as_agent`, the agent), newest
/// first, strictly before the cursor position.
#[tracing::instrument(name = "sql list", skip_all)]
pub async fn list(
    db: &PgPool,
    party: Uuid,
    as_agent: bool,
    status: Option<JobStatus>,
    before: (OffsetDateTime, Uuid),
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    let status = status.map(JobStatus::as_str);
    // One statement per role, so each walks its own index in order.
    if as_agent {
        sqlx::query_as!(
            JobRow,
            "SELECT id, client_id, agent_id, status, input, result, failure_reason, price, fee, callback_url,
                accept_by, deadline, expired_because, created_at, updated_at
             FROM jobs WHERE agent_id = $1 AND ($2::text IS NULL OR status = $2) AND (created_at, id) < ($3, $4)
             ORDER BY created_at DESC, id DESC LIMIT $5",
            party,
            status,
            before.0,
            before.1,
            limit
        )
        .fetch_all(db)
        .await
    } else {
        sqlx::query_as!(
            JobRow,
            "SELECT id, client_id, agent_id, status, input, result, failure_reason, price, fee, callback_url,
                accept_by, deadline, expired_because, created_at, updated_at
             FROM jobs WHERE client_id = $1 AND ($2::text IS NULL OR status = $2) AND (created_at, id) < ($3, $4)
             ORDER BY created_at DESC, id DESC LIMIT $5",
            party,
            status,
            before.0,
            before.1,
            limit
        )
        .fetch_all(db)
        .await
    }
}
