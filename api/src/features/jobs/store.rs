//! SQL for jobs. Transitions are single conditional updates, so two racing
//! transitions cannot both win.

use std::cmp::Ordering;
use std::collections::HashMap;

use rust_decimal::Decimal;
use shared::batches::{Statement, column};
use shared::domain::{ClientId, DeliveryId, EventId, JobId, JobStatus, JobTransition, JobWindow};
use shared::events;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::resources::job::{Job, JobRow};

/// A job to create: the job as it will be answered (already checked), and
/// what is stored beside it.
pub struct NewJob {
    pub job: Job,
    pub idempotency_key: Option<String>,
    pub request_hash: Vec<u8>,
    /// The `job.created` event: its id and data (the job as created).
    pub event: (EventId, serde_json::Value),
    /// Of the request's span, which the delivery's task continues.
    pub traceparent: Option<String>,
    /// The key that signed the request, which must still be the client's.
    pub signer_key: Vec<u8>,
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

/// Writes jobs, each with its `job.created` event and its delivery to the
/// agent's endpoint, in one statement for any number of concurrent
/// requests (a [`Statement`], through `shared::batches`), in its own
/// transaction. Each job opens with the check every owner write makes
/// ([`crate::http::auth::Signer`]): its signer key must still be the
/// client's active key, and the client's row is held `FOR KEY SHARE` until
/// the write commits. A job is written only when its agent, as the
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
/// constraint; the statement's halves then run apart (`shared::batches`),
/// and alone it comes back as [`Creation::KeyUsed`].
/// `ON CONFLICT DO NOTHING` would turn that rare replay into a quiet "not
/// written", but every insert would then pay for it: a speculative
/// insertion (a lock-manager token, an index probe before the insert, and a
/// confirmation record in the WAL). Postgres logs each such replay as an
/// error naming the client's id and key, not a secret.
pub struct Creations;

impl Statement for Creations {
    type Input = NewJob;
    type Output = Creation;

    /// Two statements wait on each other's idempotency keys in one order.
    fn lock_order(a: &NewJob, b: &NewJob) -> Ordering {
        (a.job.client_id.as_uuid(), &a.idempotency_key).cmp(&(b.job.client_id.as_uuid(), &b.idempotency_key))
    }

    async fn run(&self, db: &PgPool, new: &[NewJob]) -> sqlx::Result<Vec<Creation>> {
        let rows = sqlx::query!(
            r#"WITH new AS (
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::jsonb[], $5::numeric[], $6::numeric[],
                                        $7::text[], $8::text[], $9::bytea[], $10::timestamptz[], $11::uuid[], $12::jsonb[],
                                        $13::uuid[], $14::text[], $15::timestamptz[], $16::timestamptz[], $17::bytea[])
                       AS n(job_id, client_id, agent_id, input, price, fee, callback_url, idempotency_key, request_hash,
                            created_at, event_id, event_data, delivery_id, traceparent, accept_by, deadline, signer_key)
               ), signer AS (
                   SELECT n.job_id FROM new n
                   JOIN clients c ON c.id = n.client_id AND c.active AND c.public_key = n.signer_key
                   FOR KEY SHARE OF c
               ), agent AS (
                   SELECT n.job_id, a.id, a.price, a.active, a.endpoint_url, a.endpoint_disabled_at
                   FROM new n JOIN agents a ON a.id = n.agent_id
                   WHERE EXISTS (SELECT FROM signer s WHERE s.job_id = n.job_id)
               ), job AS (
                   INSERT INTO jobs (id, client_id, agent_id, input, price, fee, callback_url, idempotency_key, request_hash,
                                     accept_by, deadline, created_at, updated_at)
                   SELECT n.job_id, n.client_id, a.id, n.input, n.price, n.fee, n.callback_url, n.idempotency_key,
                          n.request_hash, n.accept_by, n.deadline, n.created_at, n.created_at
                   FROM new n JOIN agent a ON a.job_id = n.job_id
                   WHERE a.active AND a.price >= n.price
                   RETURNING id
               ), event AS (
                   INSERT INTO events (id, aggregate_type, aggregate_id, type, data)
                   SELECT n.event_id, 'job', job.id, $18, n.event_data FROM job JOIN new n ON n.job_id = job.id
                   RETURNING id, aggregate_id
               ), delivery AS (
                   INSERT INTO webhook_deliveries (id, event_id, job_id, agent_id, target_url, traceparent, status, last_error, finished_at)
                   SELECT n.delivery_id, event.id, n.job_id, a.id, a.endpoint_url, n.traceparent,
                          CASE WHEN a.endpoint_disabled_at IS NULL THEN 'pending' ELSE 'dead' END,
                          CASE WHEN a.endpoint_disabled_at IS NULL THEN NULL ELSE $19 END,
                          CASE WHEN a.endpoint_disabled_at IS NULL THEN NULL ELSE now() END
                   FROM event JOIN new n ON n.job_id = event.aggregate_id JOIN agent a ON a.job_id = n.job_id
               )
               SELECT n.job_id AS "job_id!", EXISTS (SELECT FROM signer s WHERE s.job_id = n.job_id) AS "signer_current!",
                      a.price AS "agent_price?", a.active AS "agent_active?",
                      EXISTS (SELECT FROM job WHERE job.id = n.job_id) AS "created!"
               FROM new n LEFT JOIN agent a ON a.job_id = n.job_id"#,
            &column(new, |new| new.job.id.as_uuid()),
            &column(new, |new| new.job.client_id.as_uuid()),
            &column(new, |new| new.job.agent_id.as_uuid()),
            &column(new, |new| new.job.input.clone()),
            &column(new, |new| new.job.price.value()),
            &column(new, |new| new.job.fee.value()),
            &column(new, |new| new.job.callback_url.as_deref()) as &[Option<&str>],
            &column(new, |new| new.idempotency_key.as_deref()) as &[Option<&str>],
            &column(new, |new| new.request_hash.as_slice()) as &[&[u8]],
            &column(new, |new| new.job.created_at),
            &column(new, |new| new.event.0.as_uuid()),
            &column(new, |new| new.event.1.clone()),
            &column(new, |_| DeliveryId::generate().as_uuid()),
            &column(new, |new| new.traceparent.as_deref()) as &[Option<&str>],
            &column(new, |new| new.job.accept_by) as &[Option<OffsetDateTime>],
            &column(new, |new| new.job.deadline) as &[Option<OffsetDateTime>],
            &column(new, |new| new.signer_key.as_slice()) as &[&[u8]],
            events::JOB_CREATED,
            shared::webhooks::ENDPOINT_DISABLED,
        )
        .fetch_all(db)
        .await;
        let rows = match rows {
            Err(sqlx::Error::Database(error))
                if new.len() == 1 && error.constraint() == Some(IDEMPOTENCY_KEY_UNIQUE) =>
            {
                return Ok(vec![Creation::KeyUsed]);
            }
            rows => rows?,
        };
        let mut by_job: HashMap<Uuid, Creation> = rows
            .into_iter()
            .map(|row| {
                let creation = if row.created {
                    Creation::Created
                } else {
                    let agent =
                        row.agent_price.zip(row.agent_active).map(|(price, active)| AgentTerms { price, active });
                    Creation::NotWritten { signer_current: row.signer_current, agent }
                };
                (row.job_id, creation)
            })
            .collect();
        new.iter()
            .map(|new| {
                by_job
                    .remove(&new.job.id.as_uuid())
                    .ok_or_else(|| sqlx::Error::Protocol("a new job got no row back".into()))
            })
            .collect()
    }
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
