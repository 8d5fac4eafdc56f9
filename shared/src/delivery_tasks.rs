//! Delivery tasks on Cloud Tasks: what the API's relay creates for a
//! delivery's first attempt, and the worker for each later one (it owns the
//! retry schedule) or for a deferral. Both sides share the task body
//! ([`Push`]) and the naming here.
//!
//! A task is named from its delivery, generation and attempt
//! (`<delivery>-<generation>-<attempt>`), so creating it twice (a crash
//! between creating and recording) is refused as ALREADY_EXISTS, which
//! counts as created. A deferral (the endpoint is paced or busy) is the same
//! attempt at a later time, so its name adds that time.
//!
//! One queue dispatches at most 500 tasks/s, so deliveries are spread over
//! `CLOUD_TASKS_QUEUE_COUNT` queues. A delivery's tasks all go to the queue
//! its id picks ([`DeliveryTasks::queue_of`]): names deduplicate per queue,
//! so a task created twice must land in the same one.

use anyhow::Context;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{HttpMethod, HttpRequest, OidcToken, Task};
use google_cloud_wkt::Timestamp;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::DeliveryId;
use crate::settings::CloudTasksSettings;

/// The task body: which delivery, which round of sending (a resend starts a
/// new generation; pushes of older tasks are dropped) and which attempt (a
/// push whose attempt is already recorded is not sent again).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Push {
    pub delivery_id: DeliveryId,
    pub generation: i32,
    /// 1-based. Absent in tasks made before the worker owned the schedule:
    /// those are the delivery's next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
}

impl Push {
    /// The name tasks had before the worker owned the schedule (the relay's,
    /// one per generation), for rows dispatched then.
    pub fn task_name_before_attempts(delivery: DeliveryId, generation: i32) -> String {
        format!("{}-{generation}", delivery.as_uuid().simple())
    }

    /// The short task name of this push (unique per delivery, generation,
    /// attempt and, for a deferral, time).
    pub fn task_name(&self, deferred_to: Option<OffsetDateTime>) -> String {
        let base = format!("{}-{}-{}", self.delivery_id.as_uuid().simple(), self.generation, self.attempt.unwrap_or(1));
        match deferred_to {
            Some(at) => format!("{base}-at{}", at.unix_timestamp_nanos() / 1_000_000),
            None => base,
        }
    }
}

#[derive(Clone)]
pub struct DeliveryTasks {
    client: CloudTasks,
    settings: CloudTasksSettings,
    /// Every queue's full name, the first being `settings.queue`.
    queues: Vec<String>,
}

impl DeliveryTasks {
    /// With `CLOUD_TASKS_ENDPOINT` set (the local stand-in), anonymous
    /// credentials; otherwise Google's endpoint with Application Default
    /// Credentials.
    pub async fn connect(settings: CloudTasksSettings) -> anyhow::Result<Self> {
        let builder = CloudTasks::builder();
        let client = match &settings.endpoint {
            Some(endpoint) => {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                builder.with_endpoint(endpoint).with_credentials(anonymous).build().await
            }
            None => builder.build().await,
        }
        .context("cannot build the Cloud Tasks client")?;
        Ok(Self { client, queues: settings.queues(), settings })
    }

    /// The full name of the queue of `delivery`'s tasks.
    pub fn queue_of(&self, delivery: DeliveryId) -> &str {
        &self.queues[queue_index(delivery, self.queues.len())]
    }

    /// Creates the HTTP task `name` that pushes `push` to the worker at `at`
    /// (now when `None`), carrying `traceparent` so the worker continues the
    /// trace. The body names the delivery and nothing else (no secrets; tasks
    /// are at most 100 KB). A task that exists already counts as created.
    pub async fn create(
        &self,
        name: &str,
        push: &Push,
        at: Option<OffsetDateTime>,
        traceparent: Option<String>,
    ) -> anyhow::Result<()> {
        let body = serde_json::to_vec(push)?;
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(traceparent) = traceparent {
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
        let queue = self.queue_of(push.delivery_id);
        let mut task = Task::new().set_name(format!("{queue}/tasks/{name}")).set_http_request(request);
        if let Some(at) = at {
            task = task.set_schedule_time(Timestamp::clamp(at.unix_timestamp(), at.nanosecond() as i32));
        }
        match self.client.create_task().set_parent(queue).set_task(task).send().await {
            Ok(_) => Ok(()),
            // Created before (by us, before a crash, or by a duplicate push): Cloud Tasks has it.
            Err(error) if has_code(&error, "ALREADY_EXISTS") => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot create task {name}")),
        }
    }

    /// Whether `delivery`'s task `name` still exists (scheduled, running or
    /// retrying): Cloud Tasks answers NOT_FOUND once it finished or was never
    /// created. Looked up in the delivery's queue, then in the others, since
    /// the task may predate a change of `CLOUD_TASKS_QUEUE_COUNT` (the sweep
    /// is rare, and re-queueing a live delivery would send it twice).
    pub async fn exists(&self, delivery: DeliveryId, name: &str) -> anyhow::Result<bool> {
        let own = self.queue_of(delivery);
        let others = self.queues.iter().map(String::as_str).filter(|queue| *queue != own);
        for queue in std::iter::once(own).chain(others) {
            match self.client.get_task().set_name(format!("{queue}/tasks/{name}")).send().await {
                Ok(_) => return Ok(true),
                Err(error) if has_code(&error, "NOT_FOUND") => {}
                Err(error) => return Err(error).with_context(|| format!("cannot look task {name} up in {queue}")),
            }
        }
        Ok(false)
    }
}

/// Which of `queues` queues takes `delivery`'s tasks: its id modulo their
/// number. Stable across processes and releases (no seeded hasher), and
/// even, since an id's low 62 bits are random (UUIDv4 or v7).
fn queue_index(delivery: DeliveryId, queues: usize) -> usize {
    (delivery.as_uuid().as_u128() % queues.max(1) as u128) as usize
}

fn has_code(error: &google_cloud_tasks_v2::Error, code: &str) -> bool {
    error.status().is_some_and(|status| status.code.to_string() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_tell_delivery_generation_attempt_and_deferral_apart() {
        let delivery: DeliveryId = "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b".parse().unwrap();
        let push = Push { delivery_id: delivery, generation: 2, attempt: Some(3) };
        assert_eq!(push.task_name(None), "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-2-3");
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(push.task_name(Some(at)), "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-2-3-at1800000000000");
    }

    #[test]
    fn a_delivery_keeps_to_one_queue_and_deliveries_spread_evenly() {
        let delivery: DeliveryId = "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b".parse().unwrap();
        assert_eq!(queue_index(delivery, 1), 0);
        assert_eq!(queue_index(delivery, 4), 0x5b % 4, "the id modulo the count, the same in every process");

        let mut per_queue = [0u32; 4];
        for _ in 0..40_000 {
            per_queue[queue_index(DeliveryId::generate(), 4)] += 1;
        }
        assert!(per_queue.iter().all(|count| (9_000..11_000).contains(count)), "{per_queue:?}");
    }

    #[test]
    fn pushes_from_before_the_schedule_parse_without_an_attempt() {
        let old: Push =
            serde_json::from_str(r#"{"delivery_id":"dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b","generation":0}"#).unwrap();
        assert_eq!(old.attempt, None);
    }
}
