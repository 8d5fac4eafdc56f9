//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances (`FOR UPDATE SKIP LOCKED`: each row is taken by
//! one relay at a time). Task names derive from the delivery id, its
//! generation and the attempt, so a task created twice (a crash between creating it and
//! marking the row) is refused by Cloud Tasks as ALREADY_EXISTS, which counts
//! as done. A Cloud Tasks outage leaves rows pending until it is back. The
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

use crate::background::rounds;
use crate::outbox::OutboxSignal;

/// Rows taken per transaction.
const BATCH: i64 = 32;
/// How often the relay looks without being woken (other instances' rows,
/// rows left by a crash, an outage that ended).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failure, before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// One CreateTask call at most; a hung call must not hold the batch's locks.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

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
            if !rounds::wait_for_next_round(&round, woken, POLL_INTERVAL, RETRY_DELAY, &mut stopping).await {
                return;
            }
        }
    }

    /// Creates the tasks of one batch of pending deliveries, concurrently, and
    /// marks those created as dispatched; failed ones stay pending. A
    /// delivery's task is for its next attempt (the first, unless the sweep
    /// re-queued it mid-schedule).
    async fn relay_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let pending = sqlx::query!(
            "SELECT id, generation, attempts, traceparent FROM webhook_deliveries WHERE status = 'pending'
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
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
            (delivery.id, name, outcome)
        }))
        .await;
        let (mut dispatched, mut names): (Vec<Uuid>, Vec<String>) = (Vec::new(), Vec::new());
        let mut failure = None;
        for (id, name, outcome) in created {
            match outcome {
                Ok(()) => {
                    dispatched.push(id);
                    names.push(name);
                }
                Err(error) => failure = Some(error),
            }
        }
        // Committed asynchronously: a mark lost to a Postgres crash leaves the
        // row pending, and creating its task again is refused as ALREADY_EXISTS.
        // The rows are still pending (this transaction holds their locks), and
        // testing it again would let the planner walk the whole pending index
        // instead of looking them up by id: after an outage, with statistics
        // taken before the backlog, that is 40-50 ms per batch at 60k pending.
        sqlx::query!(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
             UPDATE webhook_deliveries d
             SET status = 'dispatched', dispatched_at = now(), next_attempt_at = now(), task_name = created.name
             FROM unnest($1::uuid[], $2::text[]) AS created (id, name)
             WHERE EXISTS (SELECT FROM async_commit) AND d.id = created.id",
            &dispatched,
            &names
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        rounds::round_result(dispatched.len(), failure, "tasks not created")
    }
}
