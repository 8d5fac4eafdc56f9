//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances (`FOR UPDATE SKIP LOCKED`: each row is taken by
//! one relay at a time). Task names derive from the delivery id and its
//! generation, so a task created twice (a crash between creating it and
//! marking the row) is refused by Cloud Tasks as ALREADY_EXISTS, which counts
//! as done. A Cloud Tasks outage leaves rows pending until it is back. The
//! relay makes each delivery's first task; the worker makes the later ones
//! (it owns the retry schedule).
//!
//! The sweep: a `dispatched` delivery whose task is long overdue is looked
//! up in Cloud Tasks, and only when Cloud Tasks no longer has that task (its
//! crash retries ran out while the worker was down, or the worker died
//! between recording an attempt and creating the next task) is it queued
//! again, as a new generation that continues its schedule. A task merely
//! scheduled far ahead is never touched.
//!
//! Each task is created in a `create_task` span, a child of the trace of the
//! request that wrote the delivery, and carries that span's `traceparent` to
//! the worker.

use std::sync::Arc;
use std::time::Duration;

use shared::delivery_tasks::{DeliveryTasks, Push};
use shared::domain::DeliveryId;
use shared::settings::Settings;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::outbox::{self, OutboxSignal};
use crate::retention;

/// Rows taken per transaction.
const BATCH: i64 = 32;
/// How often the relay looks without being woken (other instances' rows,
/// rows left by a crash, an outage that ended).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failure, before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// One CreateTask call at most; a hung call must not hold the batch's locks.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// A dispatched delivery this long past its task's schedule time may have
/// lost its task: longer than the queue's crash retries usually take.
const OVERDUE_AFTER_SECONDS: f64 = 600.0;
/// Overdue deliveries looked up in Cloud Tasks per sweep.
const SWEEP_BATCH: i64 = 32;
/// How often the sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often the backlog's age is logged (the outbox backlog metric), expired
/// webhook secrets are dropped and old attempts pruned.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

pub struct Relay {
    db: PgPool,
    tasks: DeliveryTasks,
    settings: Arc<Settings>,
    wake: OutboxSignal,
}

impl Relay {
    pub async fn new(db: PgPool, settings: Arc<Settings>, wake: OutboxSignal) -> anyhow::Result<Self> {
        let tasks = DeliveryTasks::connect(settings.cloud_tasks.clone()).await?;
        Ok(Self { db, tasks, settings, wake })
    }

    /// Relays until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut last_housekeeping = tokio::time::Instant::now();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if last_housekeeping.elapsed() >= HOUSEKEEPING_INTERVAL {
                last_housekeeping = tokio::time::Instant::now();
                self.report_backlog().await;
                self.drop_expired_secrets().await;
                if let Err(error) = retention::prune(&self.db, &self.settings).await {
                    tracing::warn!(%error, "cannot prune old delivery attempts");
                }
            }
            if last_sweep.elapsed() >= SWEEP_INTERVAL {
                last_sweep = tokio::time::Instant::now();
                if let Err(error) = self.sweep_lost_tasks().await {
                    tracing::warn!(error = format!("{error:#}"), "sweep of overdue deliveries failed");
                }
            }
            let pause = match self.relay_batch().await {
                Ok(relayed) if relayed == BATCH as usize => Duration::ZERO,
                Ok(_) => POLL_INTERVAL,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "relay paused; deliveries stay pending");
                    RETRY_DELAY
                }
            };
            tokio::select! {
                () = self.wake.deliveries_written() => {}
                () = tokio::time::sleep(pause) => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    /// Logs how long the oldest outbox row has waited (0 when none): a
    /// delivery not yet given to Cloud Tasks, an event not yet on Pub/Sub, a
    /// dead delivery not yet on the dead-letter topic, or a dispatched
    /// delivery long past its task's time (its task may be lost). For the
    /// outbox backlog metric and alert.
    async fn report_backlog(&self) {
        let age = sqlx::query_scalar!(
            r#"SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
                   (SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending'),
                   (SELECT min(occurred_at) FROM events WHERE published_at IS NULL),
                   (SELECT min(finished_at) FROM webhook_deliveries WHERE status = 'dead' AND dead_lettered_at IS NULL),
                   (SELECT min(next_attempt_at) FROM webhook_deliveries
                    WHERE status = 'dispatched' AND next_attempt_at < now() - make_interval(secs => $1))
               )), 0)::float8 AS "age!""#,
            OVERDUE_AFTER_SECONDS
        )
        .fetch_one(&self.db)
        .await;
        match age {
            Ok(age) => tracing::info!(outbox_backlog_age_seconds = age, "outbox backlog"),
            Err(error) => tracing::warn!(%error, "cannot measure the outbox backlog"),
        }
    }

    /// A rotation's replaced secret signs until it expires; then it goes.
    async fn drop_expired_secrets(&self) {
        let dropped = sqlx::query!(
            "UPDATE agents SET previous_webhook_secret = NULL, previous_webhook_secret_expires_at = NULL
             WHERE previous_webhook_secret IS NOT NULL AND previous_webhook_secret_expires_at < now()"
        )
        .execute(&self.db)
        .await;
        if let Err(error) = dropped {
            tracing::warn!(%error, "cannot drop expired webhook secrets");
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
        sqlx::query!(
            "UPDATE webhook_deliveries d
             SET status = 'dispatched', dispatched_at = now(), next_attempt_at = now(), task_name = created.name
             FROM unnest($1::uuid[], $2::text[]) AS created (id, name)
             WHERE d.id = created.id AND d.status = 'pending'",
            &dispatched,
            &names
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        outbox::round_result(dispatched.len(), failure, "tasks not created")
    }

    /// Queues again the overdue dispatched deliveries whose task Cloud Tasks
    /// no longer has, each as a new generation (new task names) that keeps
    /// its attempts. The update is conditional on the row being as it was
    /// read, so a push that recorded meanwhile wins.
    async fn sweep_lost_tasks(&self) -> anyhow::Result<()> {
        let overdue = sqlx::query!(
            "SELECT id, generation, task_name, next_attempt_at FROM webhook_deliveries
             WHERE status = 'dispatched' AND next_attempt_at < now() - make_interval(secs => $1)
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_attempt_at LIMIT $2",
            OVERDUE_AFTER_SECONDS,
            SWEEP_BATCH
        )
        .fetch_all(&self.db)
        .await?;
        for delivery in overdue {
            // Rows from before task names were kept had `<delivery>-<generation>`.
            let name =
                delivery.task_name.unwrap_or_else(|| format!("{}-{}", delivery.id.simple(), delivery.generation));
            if self.tasks.exists(&name).await? {
                continue;
            }
            let requeued = sqlx::query!(
                "UPDATE webhook_deliveries
                 SET status = 'pending', generation = generation + 1, lease_until = NULL, lease_token = NULL,
                     next_attempt_at = NULL, task_name = NULL
                 WHERE id = $1 AND generation = $2 AND status = 'dispatched' AND next_attempt_at = $3",
                delivery.id,
                delivery.generation,
                delivery.next_attempt_at,
            )
            .execute(&self.db)
            .await?;
            if requeued.rows_affected() == 1 {
                tracing::warn!(delivery_id = %DeliveryId::from_uuid(delivery.id), task = name, "delivery task lost; queued again");
                self.wake.committed();
            }
        }
        Ok(())
    }
}
