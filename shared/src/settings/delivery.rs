//! The webhook pipeline: sending and retrying, Cloud Tasks, Pub/Sub, the
//! worker's push authentication, and where outbound requests may go.

use std::time::Duration;

use secrecy::SecretString;

use super::declare::{default, from_str, http_url, in_range, optional, positive, resource_name, seconds, variables};
use super::source::{SettingsError, SettingsSource};
use crate::egress::EgressPolicy;
use crate::retry_schedule::RetrySchedule;

/// Most delivery queues: Cloud Tasks' default quota is 1,000 queues per
/// project, and 64 × 500 dispatches/s is far past any worker fleet here.
pub const MAX_DELIVERY_QUEUES: u8 = 64;

const SECONDS_PER_DAY: u64 = 24 * 3600;

variables! {
    /// Timeout of one outbound webhook request.
    WEBHOOK_TIMEOUT_SECONDS: Duration = default("10").parse(seconds);
    /// Delays between a webhook's attempts (units ms, s, m, h, d; each ±20 % jitter; at most 25 days
    /// each); a delivery gets one attempt more than there are steps (9, about 28 h, by default), then it
    /// is dead.
    WEBHOOK_RETRY_SCHEDULE: RetrySchedule = default("5s,30s,5m,30m,2h,5h,10h,10h").parse(from_str);
    /// Most webhooks in flight at once to one endpoint host, across all worker instances (kept in
    /// Redis); others wait a few seconds.
    WEBHOOK_ENDPOINT_CONCURRENCY: u32 = default("10").parse(positive);
    /// Most webhooks in flight at once to one recipient (an agent's endpoint, or all of a client's job
    /// callbacks, whatever their hosts), across all worker instances (kept in Redis); others wait a few
    /// seconds.
    WEBHOOK_RECIPIENT_CONCURRENCY: u32 = default("20").parse(positive);
    /// Delivery attempts older than this are deleted (the deliveries themselves stay).
    DELIVERY_ATTEMPTS_RETENTION_DAYS: Duration =
        default("30").parse(|raw| positive(raw).map(|days: u32| Duration::from_secs(u64::from(days) * SECONDS_PER_DAY)));
    /// Full name of the (first) Cloud Tasks queue webhook deliveries go through.
    CLOUD_TASKS_QUEUE: String = default("projects/local/locations/local/queues/webhook-delivery")
        .parse(|raw| resource_name(raw, &["projects", "locations", "queues"]));
    /// Delivery queues (1 to 64): CLOUD_TASKS_QUEUE, then the same name ending -1, -2, …; each delivery
    /// keeps to one, picked from its id. One queue dispatches at most 500 tasks/s.
    CLOUD_TASKS_QUEUE_COUNT: u8 = default("1").parse(|raw| in_range(raw, 1, MAX_DELIVERY_QUEUES));
    /// Cloud Tasks API endpoint override (the local stand-in, with anonymous credentials); empty:
    /// Google's, with ADC.
    CLOUD_TASKS_ENDPOINT: Option<String> = default("").local("http://127.0.0.1:8123").parse(optional);
    /// Service account whose OIDC token Cloud Tasks presents to the worker (the tasks-invoker); the
    /// worker admits only tokens Google signed for it, with `aud` = WEBHOOK_WORKER_URL. Empty: no token
    /// (local; WORKER_SHARED_SECRET instead).
    CLOUD_TASKS_INVOKER_SA: Option<String> = default("").parse(optional);
    /// Where Cloud Tasks pushes deliveries; also the audience of the tasks' OIDC tokens, which the worker
    /// checks.
    WEBHOOK_WORKER_URL: String = default("http://127.0.0.1:8081/tasks/deliver").parse(http_url);
    /// Full name of the Pub/Sub topic every domain event is published to.
    PUBSUB_EVENTS_TOPIC: String =
        default("projects/local/topics/registry-events").parse(|raw| resource_name(raw, &["projects", "topics"]));
    /// Full name of the Pub/Sub topic dead webhook deliveries are published to.
    PUBSUB_DEAD_LETTER_TOPIC: String =
        default("projects/local/topics/webhook-dead-letter").parse(|raw| resource_name(raw, &["projects", "topics"]));
    /// Pub/Sub gRPC endpoint: http://… is local (Google's emulator or the project's stand-in), used with
    /// anonymous credentials (e.g. http://127.0.0.1:8085); https://… a Google endpoint, used with ADC (a
    /// regional one keeps ordering); empty: Google's global endpoint, with ADC.
    PUBSUB_ENDPOINT: Option<String> = default("").local("http://127.0.0.1:8085").parse(optional);
    /// An agent endpoint whose deliveries have failed without a success for this long is disabled (5
    /// days).
    ENDPOINT_DISABLE_AFTER_SECONDS: Duration = default("432000").parse(seconds);
    /// Bearer token the worker requires on pushes (local stand-in); empty in the cloud, where the worker
    /// checks Cloud Tasks' OIDC token (CLOUD_TASKS_INVOKER_SA). One of the two must be set for the worker.
    WORKER_SHARED_SECRET: Option<SecretString> =
        default("").secret().parse(|raw| optional(raw).map(|secret| secret.map(SecretString::from)));
    /// Where the worker fetches Google's token-signing keys (JWKS) to verify Cloud Tasks' OIDC tokens;
    /// kept as Cache-Control says.
    GOOGLE_OIDC_JWKS_URL: String = default("https://www.googleapis.com/oauth2/v3/certs").parse(http_url);
    /// Comma-separated CIDRs that webhooks and Agent Card fetches may reach although not public (local
    /// development and tests only).
    EGRESS_ALLOW_CIDRS: EgressPolicy = default("").local("127.0.0.0/8,::1/128").parse(from_str);
}

/// Where and how the relay creates delivery tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTasksSettings {
    /// The first queue, `projects/P/locations/L/queues/Q`.
    pub queue: String,
    /// Queues in all, 1 to [`MAX_DELIVERY_QUEUES`]: one dispatches at most
    /// 500 tasks/s, so a higher delivery rate needs several.
    pub queue_count: u8,
    pub endpoint: Option<String>,
    pub invoker_service_account: Option<String>,
    pub worker_url: String,
}

impl CloudTasksSettings {
    /// Every delivery queue's full name: `queue`, then `queue-1` …
    /// `queue-{queue_count - 1}` (as `infra/modules/tasks` names them).
    pub fn queues(&self) -> Vec<String> {
        let rest = (1..self.queue_count).map(|index| format!("{}-{index}", self.queue));
        std::iter::once(self.queue.clone()).chain(rest).collect()
    }
}

pub(super) fn cloud_tasks(source: &SettingsSource) -> Result<CloudTasksSettings, SettingsError> {
    Ok(CloudTasksSettings {
        queue: CLOUD_TASKS_QUEUE.read(source)?,
        queue_count: CLOUD_TASKS_QUEUE_COUNT.read(source)?,
        endpoint: CLOUD_TASKS_ENDPOINT.read(source)?,
        invoker_service_account: CLOUD_TASKS_INVOKER_SA.read(source)?,
        worker_url: WEBHOOK_WORKER_URL.read(source)?,
    })
}

/// Where domain events and dead deliveries are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubSettings {
    /// `projects/P/topics/T`.
    pub events_topic: String,
    pub dead_letter_topic: String,
    pub endpoint: Option<String>,
}

pub(super) fn pubsub(source: &SettingsSource) -> Result<PubSubSettings, SettingsError> {
    Ok(PubSubSettings {
        events_topic: PUBSUB_EVENTS_TOPIC.read(source)?,
        dead_letter_topic: PUBSUB_DEAD_LETTER_TOPIC.read(source)?,
        endpoint: PUBSUB_ENDPOINT.read(source)?,
    })
}
