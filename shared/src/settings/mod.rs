//! One settings type for every binary, read from environment variables with a
//! `.env` file as fallback (the same code locally and on Cloud Run, where
//! secrets arrive as env vars from Secret Manager).
//!
//! Each variable is declared once, by its owner: `stores.rs` (Postgres, Redis,
//! the webhook-secret key), `api.rs`, `delivery.rs` (the webhook pipeline) and
//! `http.rs` (server, logs, traces). A declaration gives its name, type,
//! default, secrecy, bounds (its parse) and doc; from it come the parse with
//! errors naming the variable (never echoing a secret), [`VARIABLES`], and the
//! checks that `deploy/.env.example` and the settings table document every
//! variable as declared (`tests.rs`). [`Settings`] has one row per field below.

mod api;
mod declare;
mod delivery;
mod http;
mod source;
mod stores;
#[cfg(test)]
mod tests;

use std::time::Duration;

use secrecy::SecretString;

pub use self::api::{
    BucketSettings, Fraction, MAX_CLOCK_SKEW_SECONDS, MAX_JOB_ACCEPT_TIMEOUT_SECONDS, PLATFORM_SIGNING_KEY,
    RateLimitSettings, ReputationPrior,
};
pub use self::declare::{Setting, Variable};
pub use self::delivery::{CloudTasksSettings, MAX_DELIVERY_QUEUES, PubSubSettings};
pub use self::http::{LogFormat, TraceSettings};
pub use self::source::{SettingsError, SettingsSource};
pub use self::stores::WebhookSecretKey;
use crate::domain::Price;
use crate::egress::EgressPolicy;
use crate::platform_key::PlatformSigningKey;
use crate::retry_schedule::RetrySchedule;

declare::settings! {
    port: u16 = http::PORT,
    database_url: SecretString = stores::DATABASE_URL,
    database_max_connections: u32 = stores::DATABASE_MAX_CONNECTIONS,
    /// Carved from `database_max_connections` by the API (0: none).
    discovery_database_connections: u32 = stores::DISCOVERY_DATABASE_CONNECTIONS,
    /// A streaming replica for the API's public reads; `None`: the primary serves them.
    database_read_url: Option<SecretString> = stores::DATABASE_READ_URL,
    read_replica_max_lag: Duration = stores::READ_REPLICA_MAX_LAG,
    redis_url: SecretString = stores::REDIS_URL,
    redis_pool_size: usize = stores::REDIS_POOL_SIZE,
    redis_key_prefix: String = stores::REDIS_KEY_PREFIX,
    /// Verifies the Redis server certificate when set (PEM).
    redis_ca_cert: Option<String> = stores::REDIS_CA_CERT,
    /// The key the API signs with; `None` only where nothing signs (the worker, tools).
    platform_signing_key: Option<PlatformSigningKey> = api::PLATFORM_SIGNING_KEY,
    /// The key replaced by the last rotation: published, never used to sign.
    platform_signing_key_previous: Option<PlatformSigningKey> = api::previous_platform_key,
    allow_http_endpoints: bool = api::ALLOW_HTTP_ENDPOINTS,
    platform_fee: Fraction = api::PLATFORM_FEE_PERCENT,
    reputation_prior: ReputationPrior = api::reputation_prior,
    /// The least a job must cost for its rating to count toward the score.
    rating_min_price: Price = api::RATING_MIN_PRICE,
    /// The accept window of a job whose request names none.
    job_accept_timeout: Duration = api::JOB_ACCEPT_TIMEOUT_SECONDS,
    rate_limits: RateLimitSettings = api::rate_limits,
    /// How long discovery pages and agents are served from memory (0: not at all).
    public_reads: Duration = api::PUBLIC_READ_CACHE_MS,
    /// The memory those pages may take (0: none).
    public_reads_max_bytes: u64 = api::PUBLIC_READ_CACHE_MAX_BYTES,
    signature_max_age: Duration = api::SIGNATURE_MAX_AGE_SECONDS,
    nonce_ttl: Duration = api::nonce_ttl,
    webhook_timeout: Duration = delivery::WEBHOOK_TIMEOUT_SECONDS,
    webhook_retry_schedule: RetrySchedule = delivery::WEBHOOK_RETRY_SCHEDULE,
    webhook_endpoint_concurrency: u32 = delivery::WEBHOOK_ENDPOINT_CONCURRENCY,
    webhook_recipient_concurrency: u32 = delivery::WEBHOOK_RECIPIENT_CONCURRENCY,
    delivery_attempts_retention: Duration = delivery::DELIVERY_ATTEMPTS_RETENTION_DAYS,
    cloud_tasks: CloudTasksSettings = delivery::cloud_tasks,
    pubsub: PubSubSettings = delivery::pubsub,
    endpoint_disable_after: Duration = delivery::ENDPOINT_DISABLE_AFTER_SECONDS,
    /// Required on worker pushes when set.
    worker_shared_secret: Option<SecretString> = delivery::WORKER_SHARED_SECRET,
    /// Google's JWKS, for the worker's check of OIDC tokens.
    google_oidc_jwks_url: String = delivery::GOOGLE_OIDC_JWKS_URL,
    /// What wraps webhook secrets' data keys; `None`: neither is set (the
    /// services refuse to start, other tools need none).
    webhook_secret_key: Option<WebhookSecretKey> = stores::webhook_secret_key,
    /// What the API's Agent Card fetches and the worker's webhooks may reach.
    egress_policy: EgressPolicy = delivery::EGRESS_ALLOW_CIDRS,
    /// Browser origins allowed by CORS, each `scheme://host[:port]`; empty: no CORS.
    cors_allowed_origins: Vec<String> = http::CORS_ALLOWED_ORIGINS,
    request_body_limit_bytes: usize = http::REQUEST_BODY_LIMIT_BYTES,
    shutdown_grace: Duration = http::SHUTDOWN_GRACE_SECONDS,
    log_format: LogFormat = http::LOG_FORMAT,
    log_filter: String = http::RUST_LOG,
    tracing: TraceSettings = http::tracing,
}

impl Settings {
    /// Reads the process environment (and `.env`); the error names the first
    /// bad setting.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&SettingsSource::from_env()?)
    }
}

/// Every variable, by owner.
pub const VARIABLES: &[Variable] = &concat::<{ VARIABLE_COUNT }>(OWNERS);

const OWNERS: [&[Variable]; 4] = [stores::VARIABLES, api::VARIABLES, delivery::VARIABLES, http::VARIABLES];

const VARIABLE_COUNT: usize = {
    let (mut count, mut owner) = (0, 0);
    while owner < OWNERS.len() {
        count += OWNERS[owner].len();
        owner += 1;
    }
    count
};

/// The owners' lists as one (const: `VARIABLES` stays a constant).
const fn concat<const N: usize>(lists: [&[Variable]; 4]) -> [Variable; N] {
    let mut all = [lists[0][0]; N];
    let (mut index, mut list) = (0, 0);
    while list < lists.len() {
        let mut item = 0;
        while item < lists[list].len() {
            all[index] = lists[list][item];
            (index, item) = (index + 1, item + 1);
        }
        list += 1;
    }
    all
}
