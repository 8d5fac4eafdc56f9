//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances (`FOR UPDATE SKIP LOCKED`: each row is taken by
//! one relay at a time). Task names derive from the delivery id and its
//! generation, so a task created twice (a crash between creating it and
//! marking the row) is refused by Cloud Tasks as ALREADY_EXISTS, which counts
//! as done. A Cloud Tasks outage leaves rows pending until it is back. A
//! delivery whose task ended without a final answer (a worker killed mid-send
//! on its last attempt) is swept back to pending after an hour, as a new
//! generation.
//!
//! Each task is created in a `create_task` span, a child of the trace of the
//! request that wrote the delivery, and carries that span's `traceparent` to
//! the worker.

use std::time::Duration;

use anyhow::Context;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{HttpMethod, HttpRequest, OidcToken, Task};
use shared::domain::DeliveryId;
use shared::settings::CloudTasksSettings;
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
/// One CreateTask call at most; a hung call must not hold the batch's locks.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// A dispatched delivery with no final answer after this long lost its task.
const STRANDED_AFTER_SECONDS: f64 = 3600.0;
/// How often the backlog's age is logged (the outbox backlog metric) and
/// expired webhook secrets are dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

pub struct Relay {
    db: PgPool,
    tasks: CloudTasks,
    settings: CloudTasksSettings,
    wake: OutboxSignal,
}

impl Relay {
    /// With `CLOUD_TASKS_ENDPOINT` set (the local stand-in), anonymous
    /// credentials; otherwise Google's endpoint with Application Default
    /// Credentials.
    pub async fn new(db: PgPool, settings: CloudTasksSettings, wake: OutboxSignal) -> anyhow::Result<Self> {
        let builder = CloudTasks::builder();
        let tasks = match &settings.endpoint {
            Some(endpoint) => {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                builder.with_endpoint(endpoint).with_credentials(anonymous).build().await
            }
            None => builder.build().await,
        }
        .context("cannot build the Cloud Tasks client")?;
        Ok(Self { db, tasks, settings, wake })
    }

    /// Relays until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut last_housekeeping = tokio::time::Instant::now();
        loop {
            if last_housekeeping.elapsed() >= HOUSEKEEPING_INTERVAL {
                last_housekeeping = tokio::time::Instant::now();
                self.report_backlog().await;
                self.drop_expired_secrets().await;
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
    /// delivery not yet given to Cloud Tasks, an event not yet on Pub/Sub, or
    /// a dead delivery not yet on the dead-letter topic. For the outbox
    /// backlog metric and alert.
    async fn report_backlog(&self) {
        let age = sqlx::query_scalar!(
            r#"SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
                   (SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending'),
                   (SELECT min(occurred_at) FROM events WHERE published_at IS NULL),
                   (SELECT min(finished_at) FROM webhook_deliveries WHERE status = 'dead' AND dead_lettered_at IS NULL)
               )), 0)::float8 AS "age!""#
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
    /// marks those created as dispatched; failed ones stay pending.
    async fn relay_batch(&self) -> anyhow::Result<usize> {
        sqlx::query!(
            "UPDATE webhook_deliveries SET status = 'pending', generation = generation + 1
             WHERE status = 'dispatched' AND dispatched_at < now() - make_interval(secs => $1)
               AND (lease_until IS NULL OR lease_until < now())",
            STRANDED_AFTER_SECONDS
        )
        .execute(&self.db)
        .await?;
        let mut tx = self.db.begin().await?;
        let pending = sqlx::query!(
            "SELECT id, generation, traceparent FROM webhook_deliveries WHERE status = 'pending'
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let created = futures_util::future::join_all(pending.iter().map(|delivery| async move {
            let id = DeliveryId::from_uuid(delivery.id);
            let span = tracing::info_span!("create_task", delivery_id = %id, generation = delivery.generation);
            if let Some(traceparent) = &delivery.traceparent {
                shared::telemetry::set_parent_traceparent(&span, traceparent);
            }
            let task = self.create_task(id, delivery.generation).instrument(span);
            let outcome = match tokio::time::timeout(CREATE_TIMEOUT, task).await {
                Ok(outcome) => outcome,
                Err(_) => Err(anyhow::anyhow!("CreateTask timed out")),
            };
            (delivery.id, outcome)
        }))
        .await;
        let mut dispatched: Vec<Uuid> = Vec::with_capacity(created.len());
        let mut failure = None;
        for (id, outcome) in created {
            match outcome {
                Ok(()) => dispatched.push(id),
                Err(error) => failure = Some(error),
            }
        }
        sqlx::query!(
            "UPDATE webhook_deliveries SET status = 'dispatched', dispatched_at = now()
             WHERE id = ANY($1) AND status = 'pending'",
            &dispatched
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        outbox::round_result(dispatched.len(), failure, "tasks not created")
    }

    /// One HTTP task per delivery: the body names the delivery and nothing
    /// else (no secrets; tasks are at most 100 KB). The task carries the
    /// current span's `traceparent`: the worker continues the trace.
    async fn create_task(&self, delivery: DeliveryId, generation: i32) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({ "delivery_id": delivery, "generation": generation }))?;
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(traceparent) = shared::telemetry::current_traceparent() {
            headers.push(("traceparent".to_owned(), traceparent));
        }
        let mut request = HttpRequest::new()
            .set_url(&self.settings.worker_url)
            .set_http_method(HttpMethod::Post)
            .set_headers(headers)
            .set_body(body);
        if let Some(account) = &self.settings.invoker_service_account {
            let token = OidcToken::new().set_service_account_email(account).set_audience(&self.settings.worker_url);
            request = request.set_oidc_token(token);
        }
        let name = format!("{}/tasks/{}-{generation}", self.settings.queue, delivery.as_uuid().simple());
        let task = Task::new().set_name(name).set_http_request(request);
        match self.tasks.create_task().set_parent(&self.settings.queue).set_task(task).send().await {
            Ok(_) => Ok(()),
            // Created before (by us, before a crash): Cloud Tasks has it.
            Err(error) if error.status().is_some_and(|status| status.code.to_string() == "ALREADY_EXISTS") => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot create the task of delivery {delivery}")),
        }
    }
}
