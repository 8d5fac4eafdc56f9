//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances (`FOR UPDATE SKIP LOCKED`: each row is taken by
//! one relay at a time). Task names derive from the delivery id and its
//! generation, so a task created twice (a crash between creating it and
//! marking the row) is refused by Cloud Tasks as ALREADY_EXISTS, which counts
//! as done. A Cloud Tasks outage leaves rows pending until it is back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{HttpMethod, HttpRequest, OidcToken, Task};
use shared::domain::DeliveryId;
use shared::settings::CloudTasksSettings;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// Rows taken per transaction.
const BATCH: i64 = 32;
/// How often the relay looks without being woken (other instances' rows,
/// rows left by a crash, an outage that ended).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failure, before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Wakes the relay after a commit that wrote deliveries.
#[derive(Clone, Default)]
pub struct RelayHandle(Arc<Notify>);

impl RelayHandle {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

pub struct Relay {
    db: PgPool,
    tasks: CloudTasks,
    settings: CloudTasksSettings,
    wake: RelayHandle,
}

impl Relay {
    /// With `CLOUD_TASKS_ENDPOINT` set (the local stand-in), anonymous
    /// credentials; otherwise Google's endpoint with Application Default
    /// Credentials.
    pub async fn new(db: PgPool, settings: CloudTasksSettings, wake: RelayHandle) -> anyhow::Result<Self> {
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
        loop {
            let pause = match self.relay_batch().await {
                Ok(relayed) if relayed == BATCH as usize => Duration::ZERO,
                Ok(_) => POLL_INTERVAL,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "relay paused; deliveries stay pending");
                    RETRY_DELAY
                }
            };
            tokio::select! {
                () = self.wake.0.notified() => {}
                () = tokio::time::sleep(pause) => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    /// Creates the tasks of one batch of pending deliveries and marks them
    /// dispatched; stops at the first failure, leaving the rest pending.
    async fn relay_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let pending = sqlx::query!(
            "SELECT id, generation FROM webhook_deliveries WHERE status = 'pending'
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut dispatched: Vec<Uuid> = Vec::with_capacity(pending.len());
        let mut failure = None;
        for delivery in &pending {
            match self.create_task(DeliveryId::from_uuid(delivery.id), delivery.generation).await {
                Ok(()) => dispatched.push(delivery.id),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
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
        match failure {
            Some(error) if dispatched.is_empty() => Err(error),
            Some(error) => {
                tracing::warn!(error = format!("{error:#}"), relayed = dispatched.len(), "relay stopped mid-batch");
                Ok(dispatched.len())
            }
            None => Ok(dispatched.len()),
        }
    }

    /// One HTTP task per delivery: the body names the delivery and nothing
    /// else (no secrets; tasks are at most 100 KB).
    async fn create_task(&self, delivery: DeliveryId, generation: i32) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({ "delivery_id": delivery }))?;
        let mut request = HttpRequest::new()
            .set_url(&self.settings.worker_url)
            .set_http_method(HttpMethod::Post)
            .set_headers([("content-type", "application/json")])
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
            Err(error) if error.http_status_code() == Some(409) => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot create the task of delivery {delivery}")),
        }
    }
}
