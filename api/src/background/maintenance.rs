//! What the API does in the background besides relaying and publishing,
//! in a task of its own so that none of it delays a first attempt:
//!
//! - the sweep (every 10 s): a `dispatched` delivery more than 10 minutes
//!   past its task's time is looked up in Cloud Tasks, and only when Cloud
//!   Tasks no longer has that task (its crash retries ran out while the
//!   worker was down, or the worker died between recording an attempt and
//!   creating the next task) is it queued again, as a new generation that
//!   keeps its attempts. A task merely scheduled far ahead is never touched.
//!   The sweep walks overdue rows in order, so rows whose task still exists
//!   do not hide the ones behind them.
//! - reputation (every round): the settings' prior and rating minimum price
//!   made the ones ratings use, agents rescored in batches after the prior
//!   changed, and a batch of rated agents refreshed, as their raters'
//!   weights grow (`reputation`).
//! - housekeeping (every minute): the outbox backlog metric, expired webhook
//!   secrets dropped, plaintext ones (from an older revision) sealed,
//!   receipts an older revision issued made private
//!   (`features::receipts::legacy`), old attempts pruned (`retention`).
//!
//! One API instance at a time does it (a `Singleton` lease, as the
//! publisher's); each update is conditional on the row as it was read
//! anyway, so a lease that lapsed mid-round cannot make two instances act on
//! one row.

use std::sync::Arc;
use std::time::Duration;

use shared::delivery_tasks::{DeliveryTasks, Push};
use shared::domain::DeliveryId;
use shared::error_chain::Causes;
use shared::progress::Report;
use shared::sealing::Sealer;
use shared::settings::Settings;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::background::singleton::Singleton;
use crate::background::{reputation, retention};
use crate::features::receipts;
use crate::http::platform_keys::PlatformKeys;
use crate::http::state::AppState;
use crate::outbox::OutboxSignal;

/// A dispatched delivery this long past its task's time may have lost its
/// task: longer than the queue's crash retries usually take to give up.
const OVERDUE_AFTER_SECONDS: f64 = 600.0;
/// Overdue deliveries looked up in Cloud Tasks per sweep.
const SWEEP_BATCH: i64 = 32;
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// One GetTask at most; a hung call must not stop the sweep.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// Batches of plaintext secrets sealed, and of receipts made private, per
/// housekeeping round, at most.
const LEGACY_BATCHES: usize = 50;
/// Longer than a round usually takes; a holder that died is replaced after
/// this (a round that takes longer may overlap the next holder's, safely).
const LEASE: Duration = Duration::from_secs(60);

pub struct Maintenance {
    db: PgPool,
    sealer: Arc<Sealer>,
    platform_keys: Arc<PlatformKeys>,
    tasks: DeliveryTasks,
    settings: Arc<Settings>,
    wake: OutboxSignal,
    lease: Singleton,
}

impl Maintenance {
    pub fn new(state: &AppState, tasks: DeliveryTasks) -> Self {
        Self {
            db: state.db.clone(),
            sealer: state.sealer.clone(),
            platform_keys: state.platform_keys.clone(),
            tasks,
            settings: state.settings.clone(),
            wake: state.outbox.clone(),
            lease: Singleton::new("maintenance", LEASE),
        }
    }

    /// Runs until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut last_housekeeping = tokio::time::Instant::now();
        // Where the sweep goes on from: the due time of the last row it looked at.
        let mut swept_to = None;
        loop {
            match self.lease.hold(&self.db).await {
                Ok(true) => self.round(&mut last_housekeeping, &mut swept_to).await,
                Ok(false) => {} // Another instance does it.
                Err(error) => tracing::warn!(%error, "cannot take the maintenance lease"),
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
                _ = stopping.wait_for(|stopping| *stopping) => break,
            }
        }
        self.lease.release(&self.db).await;
    }

    /// One round as the lease holder: a sweep, and housekeeping when due.
    async fn round(&self, last_housekeeping: &mut tokio::time::Instant, swept_to: &mut Option<OffsetDateTime>) {
        let settings = &self.settings;
        if let Err(error) =
            reputation::follow_settings(&self.db, settings.reputation_prior, settings.rating_min_price).await
        {
            tracing::warn!(%error, "cannot rescore agents");
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING_INTERVAL {
            *last_housekeeping = tokio::time::Instant::now();
            self.report_backlog().await;
            self.drop_expired_secrets().await;
            // Rows an older revision wrote in plaintext during a roll-out.
            if let Err(error) =
                shared::sealing::seal_legacy_secrets(&self.db, &self.sealer, LEGACY_BATCHES, Report::Log).await
            {
                tracing::warn!(error = %Causes(&*error), "cannot seal plaintext webhook secrets");
            }
            if let Err(error) = receipts::legacy::make_private(&self.db, &self.platform_keys, LEGACY_BATCHES).await {
                tracing::warn!(error = %Causes(&*error), "cannot make receipts private");
            }
            if let Err(error) = retention::prune(&self.db, &self.settings).await {
                tracing::warn!(%error, "cannot prune old delivery attempts");
            }
        }
        match self.sweep_lost_tasks(*swept_to).await {
            Ok(last) => *swept_to = last,
            Err(error) => tracing::warn!(error = %Causes(&*error), "sweep of overdue deliveries failed"),
        }
    }

    /// Logs how long the oldest outbox row has waited (0 when none): a
    /// delivery not yet given to Cloud Tasks, an event not yet on Pub/Sub, a
    /// dead delivery not yet on the dead-letter topic, or a dispatched
    /// delivery long past its task's time (its task may be lost). For the
    /// outbox backlog metric and alert. The oldest pending delivery is one
    /// pass over the pending index by recipient (the relay's only one, see
    /// its module), as long as the backlog itself.
    async fn report_backlog(&self) {
        let age = sqlx::query_scalar!(
            r#"SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
                   (SELECT min(queued_at) FROM webhook_deliveries WHERE status = 'pending'),
                   (SELECT min(occurred_at) FROM events WHERE published_at IS NULL),
                   (SELECT min(finished_at) FROM webhook_deliveries WHERE status = 'dead' AND dead_lettered_at IS NULL),
                   (SELECT min(COALESCE(next_attempt_at, dispatched_at)) FROM webhook_deliveries
                    WHERE status = 'dispatched'
                      AND COALESCE(next_attempt_at, dispatched_at) < now() - make_interval(secs => $1))
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
            "UPDATE agents SET previous_webhook_secret = NULL, previous_webhook_secret_sealed = NULL,
                 previous_webhook_secret_expires_at = NULL
             WHERE previous_webhook_secret_expires_at < now()"
        )
        .execute(&self.db)
        .await;
        if let Err(error) = dropped {
            tracing::warn!(%error, "cannot drop expired webhook secrets");
        }
    }

    /// Queues again the overdue dispatched deliveries whose task Cloud Tasks
    /// no longer has, each as a new generation (new task names) that keeps
    /// its attempts. The update is conditional on the row being as it was
    /// read, so a push that recorded meanwhile wins.
    /// Looks at the next batch after `after` (from the start when `None`);
    /// returns where the next sweep goes on from (`None`: the start again).
    async fn sweep_lost_tasks(&self, after: Option<OffsetDateTime>) -> anyhow::Result<Option<OffsetDateTime>> {
        let overdue = sqlx::query!(
            r#"SELECT id, generation, task_name, COALESCE(next_attempt_at, dispatched_at) AS "due!"
               FROM webhook_deliveries
               WHERE status = 'dispatched'
                 AND COALESCE(next_attempt_at, dispatched_at) < now() - make_interval(secs => $1)
                 AND COALESCE(next_attempt_at, dispatched_at) > COALESCE($3::timestamptz, '-infinity')
                 AND (lease_until IS NULL OR lease_until < now())
               ORDER BY COALESCE(next_attempt_at, dispatched_at) LIMIT $2"#,
            OVERDUE_AFTER_SECONDS,
            SWEEP_BATCH,
            after,
        )
        .fetch_all(&self.db)
        .await?;
        let next_after = if overdue.len() < SWEEP_BATCH as usize { None } else { overdue.last().map(|row| row.due) };
        for delivery in overdue {
            let id = DeliveryId::from_uuid(delivery.id);
            let name = delivery.task_name.unwrap_or_else(|| Push::task_name_before_attempts(id, delivery.generation));
            match tokio::time::timeout(LOOKUP_TIMEOUT, self.tasks.exists(id, &name)).await {
                Ok(Ok(false)) => {}
                Ok(Ok(true)) => continue,
                Ok(Err(error)) => return Err(error),
                Err(_) => anyhow::bail!("GetTask {name} timed out"),
            }
            let requeued = sqlx::query!(
                "UPDATE webhook_deliveries
                 SET status = 'pending', generation = generation + 1, lease_until = NULL, lease_token = NULL,
                     next_attempt_at = NULL, task_name = NULL, deferrals = 0
                 WHERE id = $1 AND generation = $2 AND status = 'dispatched'
                   AND COALESCE(next_attempt_at, dispatched_at) = $3
                   AND (lease_until IS NULL OR lease_until < now())",
                delivery.id,
                delivery.generation,
                delivery.due,
            )
            .execute(&self.db)
            .await?;
            if requeued.rows_affected() == 1 {
                tracing::warn!(delivery_id = %id, task = name, "delivery task lost; queued again");
                self.wake.committed();
            }
        }
        Ok(next_after)
    }
}
