//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances: a relay claims its batch for
//! [`CLAIM_FOR`] in one short statement (`FOR UPDATE SKIP LOCKED` picks rows
//! nobody claimed), creates the tasks holding no row lock, then marks the
//! created ones `dispatched` and lets go of the rest. A push that reaches
//! the worker before that mark takes its lease at once instead of waiting
//! for the relay's transaction. Task names derive from the delivery id, its
//! generation and the attempt, so a task created twice (a crash between
//! creating it and marking the row, then a lapsed claim) is refused by Cloud
//! Tasks as ALREADY_EXISTS, which counts as done. A Cloud Tasks outage
//! leaves rows pending until it is back. The
//! relay makes each delivery's task for its next attempt (the first, unless
//! the sweep in `maintenance` re-queued it mid-schedule); the worker makes
//! the later ones (it owns the retry schedule).
//!
//! Each task is created in a `create_task` span, a child of the trace of the
//! request that wrote the delivery, and carries that span's `traceparent` to
//! the worker.

use std::time::Duration;

use shared::delivery_tasks::{DeliveryTasks, Push};
use shared::domain::DeliveryId;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::outbox::{self, OutboxSignal};

/// Rows taken per transaction.
const BATCH: i64 = 32;
/// How often the relay looks without being woken (other instances' rows,
/// rows left by a crash, an outage that ended).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failure, before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// One CreateTask call at most; a hung call must not outlast the claim.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch is its relay's: past every call's timeout, so only a
/// relay that died lets its claim lapse.
const CLAIM_FOR: Duration = Duration::from_secs(30);

pub struct Relay {
    db: PgPool,
    tasks: DeliveryTasks,
    wake: OutboxSignal,
}

impl Relay {
    pub fn new(db: PgPool, tasks: DeliveryTasks, wake: OutboxSignal) -> Self {
        Self { db, tasks, wake }
    }

    /// Relays until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        loop {
            let round = self.relay_batch().await.map(|relayed| relayed == BATCH as usize);
            if let Err(error) = &round {
                tracing::warn!(error = format!("{error:#}"), "relay paused; deliveries stay pending");
            }
            let woken = self.wake.deliveries_written();
            if !outbox::wait_for_next_round(&round, woken, POLL_INTERVAL, RETRY_DELAY, &mut stopping).await {
                return;
            }
        }
    }

    /// Creates the tasks of one batch of pending deliveries, concurrently, and
    /// marks those created as dispatched; failed ones stay pending. A
    /// delivery's task is for its next attempt (the first, unless the sweep
    /// re-queued it mid-schedule).
    async fn relay_batch(&self) -> anyhow::Result<usize> {
        // Committed asynchronously: a claim lost to a Postgres crash only lets
        // another round create the same tasks, which are refused by name.
        let pending = sqlx::query!(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
             unclaimed AS (
                 SELECT id FROM webhook_deliveries
                 WHERE status = 'pending' AND (relay_claimed_until IS NULL OR relay_claimed_until < now())
                 ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED
             )
             UPDATE webhook_deliveries d SET relay_claimed_until = now() + make_interval(secs => $2)
             FROM unclaimed WHERE EXISTS (SELECT FROM async_commit) AND d.id = unclaimed.id
             RETURNING d.id, d.generation, d.attempts, d.traceparent",
            BATCH,
            CLAIM_FOR.as_secs_f64(),
        )
        .fetch_all(&self.db)
        .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let created = futures_util::future::join_all(pending.iter().map(|delivery| async move {
            let id = DeliveryId::from_uuid(delivery.id);
            let push = Push { delivery_id: id, generation: delivery.generation, attempt: Some(delivery.attempts + 1) };
            let span = tracing::info_span!("create_task", delivery_id = %id, generation = delivery.generation);
            if let Some(traceparent) = &delivery.traceparent {
                shared::telemetry::set_parent_traceparent(&span, traceparent);
            }
            let name = push.task_name(None);
            let traceparent = span.in_scope(shared::telemetry::current_traceparent);
            let task = self.tasks.create(&name, &push, None, traceparent).instrument(span);
            let outcome = match tokio::time::timeout(CREATE_TIMEOUT, task).await {
                Ok(outcome) => outcome,
                Err(_) => Err(anyhow::anyhow!("CreateTask timed out")),
            };
            (delivery, name, outcome)
        }))
        .await;
        let mut created_rows = CreatedRows::default();
        let mut failure = None;
        for (delivery, name, outcome) in created {
            match outcome {
                Ok(()) => {
                    created_rows.ids.push(delivery.id);
                    created_rows.names.push(name);
                    created_rows.generations.push(delivery.generation);
                    created_rows.attempts.push(delivery.attempts);
                }
                Err(error) => {
                    failure = Some(error);
                    created_rows.failed.push(delivery.id);
                }
            }
        }
        // Committed asynchronously: a mark lost to a Postgres crash leaves the
        // row pending, and creating its task again is refused as ALREADY_EXISTS.
        // Only the round that was claimed is marked: a row the worker moved
        // on meanwhile (an attempt recorded, a resend) keeps what it has now.
        sqlx::query!(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
             UPDATE webhook_deliveries d
             SET status = 'dispatched', dispatched_at = now(), next_attempt_at = now(), task_name = created.name,
                 relay_claimed_until = NULL
             FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[]) AS created (id, name, generation, attempts)
             WHERE EXISTS (SELECT FROM async_commit) AND d.id = created.id AND d.status = 'pending'
               AND d.generation = created.generation AND d.attempts = created.attempts",
            &created_rows.ids,
            &created_rows.names,
            &created_rows.generations,
            &created_rows.attempts,
        )
        .execute(&self.db)
        .await?;
        if !created_rows.failed.is_empty() {
            // The next round (after RETRY_DELAY) tries them again, here or elsewhere.
            sqlx::query!(
                "UPDATE webhook_deliveries SET relay_claimed_until = NULL WHERE id = ANY($1) AND status = 'pending'",
                &created_rows.failed
            )
            .execute(&self.db)
            .await?;
        }
        outbox::round_result(created_rows.ids.len(), failure, "tasks not created")
    }
}

/// The rows of a batch whose task exists, as the columns of the statement
/// that marks them, and the ids of those whose task could not be created.
/// (A row the worker finished first keeps its lapsing claim: a new round
/// of it, a resend or a re-queue, starts unclaimed.)
#[derive(Default)]
struct CreatedRows {
    ids: Vec<Uuid>,
    names: Vec<String>,
    generations: Vec<i32>,
    attempts: Vec<i32>,
    failed: Vec<Uuid>,
}
