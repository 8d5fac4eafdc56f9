//! The statement that records attempts, one or many at once, as their
//! leases' holder: each delivery's new status and next attempt, its attempt
//! row, and on a success the end of its URL's pacing and of its agent
//! endpoint's run of failures.
//!
//! One statement for any number of attempts, so that the successes of
//! concurrent pushes are written together ([`Successes`], through
//! `batches`).

use std::cmp::Ordering;
use std::time::Duration;

use shared::batches::{Statement, column};
use shared::domain::{DeliveryStatus, Outcome};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// One attempt to record, with what its lease gave it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    pub generation: i32,
    pub lease_token: Uuid,
    pub status: DeliveryStatus,
    pub attempt: i32,
    pub error: Option<String>,
    /// The next attempt's time and task (after a retryable failure).
    pub next_at: Option<OffsetDateTime>,
    pub task_name: Option<String>,
    pub started_at: OffsetDateTime,
    pub latency_ms: i32,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub outcome: Outcome,
    pub target_url: String,
    pub agent_id: Option<Uuid>,
}

/// How a statement of records commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Without waiting for the WAL flush: for successes, whose loss to a
    /// Postgres crash leaves the delivery dispatched with no task, which the
    /// sweep (`api::background::maintenance`) sends again, as at-least-once
    /// delivery allows (same `webhook-id`).
    Asynchronous,
    /// As the session commits: a failure's record names the next attempt's
    /// task, which is created after it.
    AsConfigured,
}

/// Records `records` in one statement; returns the lease tokens of those
/// recorded (a token is one push's: two pushes of one delivery in one
/// statement are told apart). A record whose lease was lost meanwhile (it lapsed and another
/// push took the delivery over) is left out: that push records instead.
pub async fn write(db: impl PgExecutor<'_>, records: &[AttemptRecord], commit: Commit) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"WITH async_commit AS (SELECT set_config('synchronous_commit', CASE WHEN $1 THEN 'off' ELSE current_setting('synchronous_commit') END, true)),
         attempt AS (
             SELECT * FROM unnest($2::uuid[], $3::int[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::timestamptz[],
                                  $9::text[], $10::timestamptz[], $11::int[], $12::int[], $13::text[], $14::text[], $15::text[], $16::uuid[])
                 AS a(delivery_id, generation, lease_token, status, attempt, error, next_at,
                      task_name, started_at, latency_ms, response_status, response_body, outcome, target_url, agent_id)
         ), updated AS (
             UPDATE webhook_deliveries d
             SET status = a.status, attempts = a.attempt, last_error = a.error, last_outcome = a.outcome,
                 lease_until = NULL, lease_token = NULL,
                 finished_at = CASE WHEN a.outcome <> 'retry' THEN now() ELSE d.finished_at END,
                 next_attempt_at = a.next_at, task_name = COALESCE(a.task_name, d.task_name), deferrals = 0,
                 -- A push can come before the relay marked the row (a task from an earlier try).
                 dispatched_at = COALESCE(d.dispatched_at, now())
             FROM attempt a
             WHERE EXISTS (SELECT FROM async_commit)
               AND d.id = a.delivery_id AND d.generation = a.generation AND d.lease_token = a.lease_token
             RETURNING a.*
         ), unpaced AS (
             DELETE FROM endpoint_health h USING updated u WHERE u.outcome = 'delivered' AND h.url = u.target_url
         ), healthy AS (
             UPDATE agents SET endpoint_failing_since = NULL
             FROM updated u
             WHERE u.outcome = 'delivered' AND agents.id = u.agent_id AND agents.endpoint_url = u.target_url
               AND agents.endpoint_failing_since IS NOT NULL
         ), inserted AS (
             INSERT INTO delivery_attempts
                 (delivery_id, generation, attempt, started_at, latency_ms, response_status, response_body, error, outcome)
             SELECT delivery_id, generation, attempt, started_at, latency_ms, response_status, response_body, error, outcome
             FROM updated
         )
         SELECT lease_token AS "lease_token!" FROM updated"#,
        commit == Commit::Asynchronous,
        &column(records, |record| record.delivery_id),
        &column(records, |record| record.generation),
        &column(records, |record| record.lease_token),
        &column(records, |record| record.status) as &[DeliveryStatus],
        &column(records, |record| record.attempt),
        &column(records, |record| record.error.as_deref()) as &[Option<&str>],
        &column(records, |record| record.next_at) as &[Option<OffsetDateTime>],
        &column(records, |record| record.task_name.as_deref()) as &[Option<&str>],
        &column(records, |record| record.started_at),
        &column(records, |record| record.latency_ms),
        &column(records, |record| record.response_status) as &[Option<i32>],
        &column(records, |record| record.response_body.as_deref()) as &[Option<&str>],
        &column(records, |record| record.outcome) as &[Outcome],
        &column(records, |record| record.target_url.as_str()) as &[&str],
        &column(records, |record| record.agent_id) as &[Option<Uuid>],
    )
    .fetch_all(db)
    .await
}

/// Successes' records, committed asynchronously: a [`Statement`] whose
/// output tells each push whether its record was written (false: its lease
/// was lost meanwhile).
pub struct Successes;

impl Statement for Successes {
    type Input = AttemptRecord;
    type Output = bool;

    fn lock_order(a: &AttemptRecord, b: &AttemptRecord) -> Ordering {
        a.delivery_id.cmp(&b.delivery_id)
    }

    /// The push's answer to Cloud Tasks waits, which nobody sees.
    const GATHER: Duration = Duration::from_millis(5);

    async fn run(&self, db: &PgPool, records: &[AttemptRecord]) -> sqlx::Result<Vec<bool>> {
        let recorded = write(db, records, Commit::Asynchronous).await?;
        Ok(records.iter().map(|record| recorded.contains(&record.lease_token)).collect())
    }
}
