//! One settings type for every binary, read from environment variables with a
//! `.env` file as fallback (the same code locally and on Cloud Run, where
//! secrets arrive as env vars from Secret Manager).
//!
//! Every variable is declared once in [`VARIABLES`] with its default and
//! description; `deploy/.env.example` and the README table are checked against
//! that list by tests.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use secrecy::{SecretSlice, SecretString};

use crate::platform_key::PlatformSigningKey;
use crate::retry_schedule::RetrySchedule;

/// A configuration variable: its name, its default (`None` = required) and
/// what it is for.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub description: &'static str,
}

const fn var(name: &'static str, default: &'static str, description: &'static str) -> Variable {
    Variable { name, default: Some(default), secret: false, description }
}

const fn required_secret(name: &'static str, description: &'static str) -> Variable {
    Variable { name, default: None, secret: true, description }
}

pub const PORT: Variable = var("PORT", "8080", "TCP port the service listens on (Cloud Run sets it).");
pub const DATABASE_URL: Variable =
    required_secret("DATABASE_URL", "Postgres connection URL, e.g. postgres://postgres@127.0.0.1:5432/agent_registry.");
pub const DATABASE_MAX_CONNECTIONS: Variable = var(
    "DATABASE_MAX_CONNECTIONS",
    "18",
    "Postgres connections per process, in all (the API's include DISCOVERY_DATABASE_CONNECTIONS).",
);
pub const DISCOVERY_DATABASE_CONNECTIONS: Variable = var(
    "DISCOVERY_DATABASE_CONNECTIONS",
    "8",
    "API only: of DATABASE_MAX_CONNECTIONS, the connections kept for discovery by tag, which run one generic plan per statement (planning it per request cost more than running it, and grew with the catalog); 0: discovery shares the pool. Below DATABASE_MAX_CONNECTIONS.",
);
pub const REDIS_URL: Variable = required_secret("REDIS_URL", "Redis connection URL, e.g. redis://127.0.0.1:6379/0.");
pub const REDIS_POOL_SIZE: Variable = var("REDIS_POOL_SIZE", "4", "Number of Redis connections.");
pub const REDIS_KEY_PREFIX: Variable = var(
    "REDIS_KEY_PREFIX",
    "ar:",
    "Prefix of every Redis key (nonces, rate limits), so deployments can share a Redis.",
);
pub const REDIS_CA_CERT: Variable = var(
    "REDIS_CA_CERT",
    "",
    "PEM CA certificate(s) that sign the Redis server certificate (Memorystore with in-transit encryption, rediss://); empty: the system roots.",
);
pub const PLATFORM_SIGNING_KEY: Variable = Variable {
    name: "PLATFORM_SIGNING_KEY",
    default: Some(""),
    secret: true,
    description: "The platform's Ed25519 private key, base64 of a 32-byte seed (`openssl rand -base64 32`): signs Agent Cards and job receipts; its public key is in /.well-known/jwks.json. Required by the API.",
};
pub const PLATFORM_SIGNING_KEY_PREVIOUS: Variable = Variable {
    name: "PLATFORM_SIGNING_KEY_PREVIOUS",
    default: Some(""),
    secret: true,
    description: "During a rotation, the replaced PLATFORM_SIGNING_KEY: it signs nothing, but its public key stays in /.well-known/jwks.json so what it signed still verifies; empty: none.",
};
pub const ALLOW_HTTP_ENDPOINTS: Variable = var(
    "ALLOW_HTTP_ENDPOINTS",
    "false",
    "Accept http:// endpoint URLs (local development only); otherwise https is required.",
);
pub const PLATFORM_FEE_PERCENT: Variable =
    var("PLATFORM_FEE_PERCENT", "0.025", "Platform fee as a fraction of the job price (0.025 = 2.5%).");
pub const RATING_PRIOR_WEIGHT: Variable = var(
    "RATING_PRIOR_WEIGHT",
    "10",
    "How many ratings the prior counts as in the reputation score discovery sorts by, (weight × mean + Σ scores) / (weight + n): above 0, at most 1000; a change rescores every agent.",
);
pub const RATING_PRIOR_MEAN: Variable = var(
    "RATING_PRIOR_MEAN",
    "3",
    "The score, 1 to 5, an agent's reputation starts from and is pulled toward while it has few ratings.",
);
pub const RATE_LIMIT_DISCOVERY_CAPACITY: Variable =
    var("RATE_LIMIT_DISCOVERY_CAPACITY", "60", "Discovery token bucket size.");
pub const RATE_LIMIT_DISCOVERY_REFILL_PER_MIN: Variable =
    var("RATE_LIMIT_DISCOVERY_REFILL_PER_MIN", "20", "Discovery tokens added per minute.");
pub const RATE_LIMIT_READ_CAPACITY: Variable = var("RATE_LIMIT_READ_CAPACITY", "120", "Read token bucket size.");
pub const RATE_LIMIT_READ_REFILL_PER_MIN: Variable =
    var("RATE_LIMIT_READ_REFILL_PER_MIN", "60", "Read tokens added per minute.");
pub const RATE_LIMIT_WRITE_CAPACITY: Variable = var("RATE_LIMIT_WRITE_CAPACITY", "30", "Write token bucket size.");
pub const RATE_LIMIT_WRITE_REFILL_PER_MIN: Variable =
    var("RATE_LIMIT_WRITE_REFILL_PER_MIN", "10", "Write tokens added per minute.");
pub const RATE_LIMIT_WRITE_IP_CAPACITY: Variable = var(
    "RATE_LIMIT_WRITE_IP_CAPACITY",
    "120",
    "Token bucket size of writes per client IP (IPv6: per /64), spent before the signature is checked.",
);
pub const RATE_LIMIT_WRITE_IP_REFILL_PER_MIN: Variable =
    var("RATE_LIMIT_WRITE_IP_REFILL_PER_MIN", "60", "Per-IP write tokens added per minute.");
pub const PUBLIC_READ_CACHE_MS: Variable = var(
    "PUBLIC_READ_CACHE_MS",
    "1000",
    "How long an instance serves a discovery page or an agent (GET /v1/agents/{id}) from memory before asking Postgres again: the most another instance's answer can be stale; 0: no cache.",
);
pub const JOB_ACCEPT_TIMEOUT_SECONDS: Variable = var(
    "JOB_ACCEPT_TIMEOUT_SECONDS",
    "86400",
    "How long an agent has to accept a job whose request sets no `accept_within_seconds` (1 to 604800); then the job expires.",
);
pub const SIGNATURE_MAX_AGE_SECONDS: Variable =
    var("SIGNATURE_MAX_AGE_SECONDS", "30", "Oldest accepted `created` time of a request signature.");
pub const NONCE_TTL_SECONDS: Variable =
    var("NONCE_TTL_SECONDS", "60", "How long a signature nonce is remembered to refuse replays.");
pub const WEBHOOK_TIMEOUT_SECONDS: Variable =
    var("WEBHOOK_TIMEOUT_SECONDS", "10", "Timeout of one outbound webhook request.");
pub const WEBHOOK_RETRY_SCHEDULE: Variable = var(
    "WEBHOOK_RETRY_SCHEDULE",
    "5s,30s,5m,30m,2h,5h,10h,10h",
    "Delays between a webhook's attempts (units ms, s, m, h, d; each ±20 % jitter; at most 25 days each); a delivery gets one attempt more than there are steps (9, about 28 h, by default), then it is dead.",
);
pub const WEBHOOK_ENDPOINT_CONCURRENCY: Variable = var(
    "WEBHOOK_ENDPOINT_CONCURRENCY",
    "10",
    "Most webhooks in flight at once to one endpoint host, across all worker instances (kept in Redis); others wait a few seconds.",
);
pub const DELIVERY_ATTEMPTS_RETENTION_DAYS: Variable = var(
    "DELIVERY_ATTEMPTS_RETENTION_DAYS",
    "30",
    "Delivery attempts older than this are deleted (the deliveries themselves stay).",
);
pub const CLOUD_TASKS_QUEUE: Variable = var(
    "CLOUD_TASKS_QUEUE",
    "projects/local/locations/local/queues/webhook-delivery",
    "Full name of the (first) Cloud Tasks queue webhook deliveries go through.",
);
pub const CLOUD_TASKS_QUEUE_COUNT: Variable = var(
    "CLOUD_TASKS_QUEUE_COUNT",
    "1",
    "Delivery queues (1 to 64): CLOUD_TASKS_QUEUE, then the same name ending -1, -2, …; each delivery keeps to one, picked from its id. One queue dispatches at most 500 tasks/s.",
);
pub const CLOUD_TASKS_ENDPOINT: Variable = var(
    "CLOUD_TASKS_ENDPOINT",
    "",
    "Cloud Tasks API endpoint override (the local stand-in, with anonymous credentials); empty: Google's, with ADC.",
);
pub const CLOUD_TASKS_INVOKER_SA: Variable = var(
    "CLOUD_TASKS_INVOKER_SA",
    "",
    "Service account whose OIDC token Cloud Tasks presents to the worker (the tasks-invoker); the worker admits only tokens Google signed for it, with `aud` = WEBHOOK_WORKER_URL. Empty: no token (local; WORKER_SHARED_SECRET instead).",
);
pub const PUBSUB_EVENTS_TOPIC: Variable = var(
    "PUBSUB_EVENTS_TOPIC",
    "projects/local/topics/registry-events",
    "Full name of the Pub/Sub topic every domain event is published to.",
);
pub const PUBSUB_DEAD_LETTER_TOPIC: Variable = var(
    "PUBSUB_DEAD_LETTER_TOPIC",
    "projects/local/topics/webhook-dead-letter",
    "Full name of the Pub/Sub topic dead webhook deliveries are published to.",
);
pub const PUBSUB_ENDPOINT: Variable = var(
    "PUBSUB_ENDPOINT",
    "",
    "Pub/Sub gRPC endpoint: http://… is local (Google's emulator or the project's stand-in), used with anonymous credentials (e.g. http://127.0.0.1:8085); https://… a Google endpoint, used with ADC (a regional one keeps ordering); empty: Google's global endpoint, with ADC.",
);
pub const ENDPOINT_DISABLE_AFTER_SECONDS: Variable = var(
    "ENDPOINT_DISABLE_AFTER_SECONDS",
    "432000",
    "An agent endpoint whose deliveries have failed without a success for this long is disabled (5 days).",
);
pub const WEBHOOK_WORKER_URL: Variable = var(
    "WEBHOOK_WORKER_URL",
    "http://127.0.0.1:8081/tasks/deliver",
    "Where Cloud Tasks pushes deliveries; also the audience of the tasks' OIDC tokens, which the worker checks.",
);
pub const WORKER_SHARED_SECRET: Variable = Variable {
    name: "WORKER_SHARED_SECRET",
    default: Some(""),
    secret: true,
    description: "Bearer token the worker requires on pushes (local stand-in); empty in the cloud, where the worker checks Cloud Tasks' OIDC token (CLOUD_TASKS_INVOKER_SA). One of the two must be set for the worker.",
};
pub const GOOGLE_OIDC_JWKS_URL: Variable = var(
    "GOOGLE_OIDC_JWKS_URL",
    "https://www.googleapis.com/oauth2/v3/certs",
    "Where the worker fetches Google's token-signing keys (JWKS) to verify Cloud Tasks' OIDC tokens; kept as Cache-Control says.",
);
pub const WEBHOOK_SECRET_KEY: Variable = Variable {
    name: "WEBHOOK_SECRET_KEY",
    default: Some(""),
    secret: true,
    description: "32 random bytes in base64 (`openssl rand -base64 32`): the local key wrapping the data keys webhook secrets are encrypted with at rest (development, tests). Empty in the cloud, where WEBHOOK_SECRET_KMS_KEY does it; the services need one of the two.",
};
pub const WEBHOOK_SECRET_KMS_KEY: Variable = var(
    "WEBHOOK_SECRET_KMS_KEY",
    "",
    "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) wrapping the data keys webhook secrets are encrypted with at rest: the API encrypts, the worker decrypts. Empty: WEBHOOK_SECRET_KEY.",
);
pub const WEBHOOK_SECRET_KMS_ENDPOINT: Variable = var(
    "WEBHOOK_SECRET_KMS_ENDPOINT",
    "",
    "Cloud KMS API endpoint override (a local stand-in, with anonymous credentials); empty: Google's, with ADC.",
);
pub const EGRESS_ALLOW_CIDRS: Variable = var(
    "EGRESS_ALLOW_CIDRS",
    "",
    "Comma-separated CIDRs that webhooks and Agent Card fetches may reach although not public (local development and tests only).",
);
pub const CORS_ALLOWED_ORIGINS: Variable = var(
    "CORS_ALLOWED_ORIGINS",
    "",
    "Comma-separated origins (scheme://host[:port]) of browser apps allowed to call the API (CORS); empty: none.",
);
pub const REQUEST_BODY_LIMIT_BYTES: Variable =
    var("REQUEST_BODY_LIMIT_BYTES", "65536", "Largest accepted request body.");
pub const SHUTDOWN_GRACE_SECONDS: Variable = var(
    "SHUTDOWN_GRACE_SECONDS",
    "8",
    "After SIGTERM, how long in-flight requests may take (Cloud Run kills after 10 s).",
);
pub const LOG_FORMAT: Variable =
    var("LOG_FORMAT", "auto", "`json` (Cloud Logging), `pretty`, or `auto`: pretty in a terminal, JSON otherwise.");
pub const RUST_LOG: Variable = var("RUST_LOG", "info", "Log filter (tracing EnvFilter syntax).");
pub const OTEL_EXPORTER_OTLP_ENDPOINT: Variable = var(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "",
    "OTLP/HTTP collector base URL (`/v1/traces` is appended), e.g. http://127.0.0.1:4318; empty: traces are not exported.",
);
pub const TRACE_SAMPLE_RATIO: Variable = var(
    "TRACE_SAMPLE_RATIO",
    "1.0",
    "Share of new traces sampled, 0 to 1 (0.1 in production); a caller's sampling decision is followed.",
);
pub const GOOGLE_CLOUD_PROJECT: Variable = var(
    "GOOGLE_CLOUD_PROJECT",
    "",
    "Project id for the `logging.googleapis.com/trace` log field; empty: the field holds the bare trace id.",
);

/// The longest accept window, whether set here or asked by a request: a week.
pub const MAX_JOB_ACCEPT_TIMEOUT_SECONDS: u32 = 604_800;

/// How far in the future a signature's `created` may be: clocks drift.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 5;

/// Every variable, in the order they are documented.
pub const VARIABLES: &[Variable] = &[
    PORT,
    DATABASE_URL,
    DATABASE_MAX_CONNECTIONS,
    DISCOVERY_DATABASE_CONNECTIONS,
    REDIS_URL,
    REDIS_POOL_SIZE,
    REDIS_KEY_PREFIX,
    REDIS_CA_CERT,
    PLATFORM_SIGNING_KEY,
    PLATFORM_SIGNING_KEY_PREVIOUS,
    ALLOW_HTTP_ENDPOINTS,
    PLATFORM_FEE_PERCENT,
    RATING_PRIOR_WEIGHT,
    RATING_PRIOR_MEAN,
    JOB_ACCEPT_TIMEOUT_SECONDS,
    RATE_LIMIT_DISCOVERY_CAPACITY,
    RATE_LIMIT_DISCOVERY_REFILL_PER_MIN,
    RATE_LIMIT_READ_CAPACITY,
    RATE_LIMIT_READ_REFILL_PER_MIN,
    RATE_LIMIT_WRITE_CAPACITY,
    RATE_LIMIT_WRITE_REFILL_PER_MIN,
    RATE_LIMIT_WRITE_IP_CAPACITY,
    RATE_LIMIT_WRITE_IP_REFILL_PER_MIN,
    PUBLIC_READ_CACHE_MS,
    SIGNATURE_MAX_AGE_SECONDS,
    NONCE_TTL_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_RETRY_SCHEDULE,
    WEBHOOK_ENDPOINT_CONCURRENCY,
    DELIVERY_ATTEMPTS_RETENTION_DAYS,
    CLOUD_TASKS_QUEUE,
    CLOUD_TASKS_QUEUE_COUNT,
    CLOUD_TASKS_ENDPOINT,
    CLOUD_TASKS_INVOKER_SA,
    PUBSUB_EVENTS_TOPIC,
    PUBSUB_DEAD_LETTER_TOPIC,
    PUBSUB_ENDPOINT,
    ENDPOINT_DISABLE_AFTER_SECONDS,
    WEBHOOK_WORKER_URL,
    WORKER_SHARED_SECRET,
    GOOGLE_OIDC_JWKS_URL,
    WEBHOOK_SECRET_KEY,
    WEBHOOK_SECRET_KMS_KEY,
    WEBHOOK_SECRET_KMS_ENDPOINT,
    EGRESS_ALLOW_CIDRS,
    CORS_ALLOWED_ORIGINS,
    REQUEST_BODY_LIMIT_BYTES,
    SHUTDOWN_GRACE_SECONDS,
    LOG_FORMAT,
    RUST_LOG,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    TRACE_SAMPLE_RATIO,
    GOOGLE_CLOUD_PROJECT,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("setting {name} is missing: {description} Set it in the environment or in .env")]
    Missing { name: &'static str, description: &'static str },
    #[error("setting {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
    #[error("cannot read {path}: {reason}")]
    EnvFile { path: String, reason: String },
}

/// A token bucket: `capacity` tokens, refilled at `refill_per_min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSettings {
    pub capacity: u32,
    pub refill_per_min: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub discovery: BucketSettings,
    pub read: BucketSettings,
    pub write: BucketSettings,
    /// Writes per client address, before their signature is checked.
    pub write_ip: BucketSettings,
}

/// Most delivery queues: Cloud Tasks' default quota is 1,000 queues per
/// project, and 64 × 500 dispatches/s is far past any worker fleet here.
pub const MAX_DELIVERY_QUEUES: u8 = 64;

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

/// The key that wraps the data keys webhook secrets are encrypted with.
#[derive(Clone)]
pub enum WebhookSecretKey {
    /// `WEBHOOK_SECRET_KEY`: 32 bytes.
    Local(SecretSlice<u8>),
    /// `WEBHOOK_SECRET_KMS_KEY`: a Cloud KMS key's full name, and where
    /// the KMS API is (`None`: Google's).
    Kms { key: String, endpoint: Option<String> },
}

/// Only which kind, never the key.
impl fmt::Debug for WebhookSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Local([redacted])"),
            Self::Kms { key, endpoint } => f.debug_struct("Kms").field("key", key).field("endpoint", endpoint).finish(),
        }
    }
}

/// Where domain events and dead deliveries are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubSettings {
    /// `projects/P/topics/T`.
    pub events_topic: String,
    pub dead_letter_topic: String,
    pub endpoint: Option<String>,
}

/// Where traces go and how many are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// OTLP/HTTP base URL; `None`: spans exist (for log correlation) but are not exported.
    pub otlp_endpoint: Option<String>,
    /// Between 0 and 1.
    pub sample_ratio: f64,
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected auto, json or pretty, got {other:?}")),
        }
    }
}

/// A fraction in `[0, 1)`, such as a platform fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction(Decimal);

impl Fraction {
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl FromStr for Fraction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str_exact(s).map_err(|e| format!("not a decimal number: {e}"))?;
        if value.is_sign_negative() || value >= Decimal::ONE {
            return Err(format!("must be at least 0 and below 1, got {value}"));
        }
        Ok(Self(value))
    }
}

/// The prior of the reputation score: it counts as `weight` ratings of
/// `mean`, so an agent's score moves from `mean` toward its own average as
/// ratings accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReputationPrior {
    pub weight: Decimal,
    pub mean: Decimal,
}

#[derive(Clone)]
pub struct Settings {
    pub port: u16,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// Carved from `database_max_connections` by the API (0: none).
    pub discovery_database_connections: u32,
    pub redis_url: SecretString,
    pub redis_pool_size: usize,
    pub redis_key_prefix: String,
    /// Verifies the Redis server certificate when set (PEM).
    pub redis_ca_cert: Option<String>,
    /// The key the API signs with; `None` only where nothing signs (the worker, tools).
    pub platform_signing_key: Option<PlatformSigningKey>,
    /// The key replaced by the last rotation: published, never used to sign.
    pub platform_signing_key_previous: Option<PlatformSigningKey>,
    pub allow_http_endpoints: bool,
    pub platform_fee: Fraction,
    pub reputation_prior: ReputationPrior,
    /// The accept window of a job whose request names none.
    pub job_accept_timeout_seconds: u32,
    pub rate_limits: RateLimitSettings,
    pub public_reads: std::time::Duration,
    pub signature_max_age_seconds: u64,
    pub nonce_ttl_seconds: u64,
    pub webhook_timeout_seconds: u64,
    pub webhook_retry_schedule: RetrySchedule,
    pub webhook_endpoint_concurrency: u32,
    pub delivery_attempts_retention_days: u32,
    pub cloud_tasks: CloudTasksSettings,
    pub pubsub: PubSubSettings,
    pub endpoint_disable_after_seconds: u64,
    /// Required on worker pushes when set.
    pub worker_shared_secret: Option<SecretString>,
    /// Google's JWKS, for the worker's check of OIDC tokens.
    pub google_oidc_jwks_url: String,
    /// What wraps webhook secrets' data keys; `None`: neither is set (the
    /// services refuse to start, other tools need none).
    pub webhook_secret_key: Option<WebhookSecretKey>,
    pub egress_allow_cidrs: String,
    /// Browser origins allowed by CORS, each `scheme://host[:port]`; empty: no CORS.
    pub cors_allowed_origins: Vec<String>,
    pub request_body_limit_bytes: usize,
    pub shutdown_grace_seconds: u64,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub tracing: TraceSettings,
}

/// Secrets stay out of logs: only the non-secret settings are printed.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field("database_url", &"[redacted]")
            .field("database_max_connections", &self.database_max_connections)
            .field("discovery_database_connections", &self.discovery_database_connections)
            .field("redis_url", &"[redacted]")
            .field("redis_pool_size", &self.redis_pool_size)
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("redis_ca_cert", &self.redis_ca_cert.as_ref().map(|_| "[set]"))
            .field("platform_signing_key", &self.platform_signing_key)
            .field("platform_signing_key_previous", &self.platform_signing_key_previous)
            .field("allow_http_endpoints", &self.allow_http_endpoints)
            .field("platform_fee", &self.platform_fee)
            .field("reputation_prior", &self.reputation_prior)
            .field("job_accept_timeout_seconds", &self.job_accept_timeout_seconds)
            .field("rate_limits", &self.rate_limits)
            .field("public_reads", &self.public_reads)
            .field("signature_max_age_seconds", &self.signature_max_age_seconds)
            .field("nonce_ttl_seconds", &self.nonce_ttl_seconds)
            .field("webhook_timeout_seconds", &self.webhook_timeout_seconds)
            .field("webhook_retry_schedule", &self.webhook_retry_schedule)
            .field("webhook_endpoint_concurrency", &self.webhook_endpoint_concurrency)
            .field("delivery_attempts_retention_days", &self.delivery_attempts_retention_days)
            .field("cloud_tasks", &self.cloud_tasks)
            .field("pubsub", &self.pubsub)
            .field("endpoint_disable_after_seconds", &self.endpoint_disable_after_seconds)
            .field("worker_shared_secret", &self.worker_shared_secret.as_ref().map(|_| "[redacted]"))
            .field("google_oidc_jwks_url", &self.google_oidc_jwks_url)
            .field("webhook_secret_key", &self.webhook_secret_key)
            .field("egress_allow_cidrs", &self.egress_allow_cidrs)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("request_body_limit_bytes", &self.request_body_limit_bytes)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("tracing", &self.tracing)
            .finish()
    }
}

/// Where settings come from: explicit values first, then the `.env` file.
#[derive(Debug, Default, Clone)]
pub struct SettingsSource {
    values: HashMap<String, String>,
}

impl SettingsSource {
    /// The process environment, falling back to `.env` in the working
    /// directory when that file exists.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_env_over_file(Path::new(".env"))
    }

    /// The process environment, falling back to the given env file.
    pub fn from_env_over_file(path: &Path) -> Result<Self, SettingsError> {
        let mut source = Self::from_env_file(path)?;
        source.values.extend(std::env::vars());
        Ok(source)
    }

    fn from_env_file(path: &Path) -> Result<Self, SettingsError> {
        let mut values = HashMap::new();
        if path.exists() {
            let entries = dotenvy::from_path_iter(path)
                .map_err(|e| SettingsError::EnvFile { path: path.display().to_string(), reason: e.to_string() })?;
            for entry in entries {
                let (key, value) = entry
                    .map_err(|e| SettingsError::EnvFile { path: path.display().to_string(), reason: e.to_string() })?;
                values.insert(key, value);
            }
        }
        Ok(Self { values })
    }

    /// Only the given pairs: for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { values: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_owned(), value.into());
    }

    fn raw(&self, variable: Variable) -> Result<&str, SettingsError> {
        match self.values.get(variable.name) {
            Some(value) if !value.trim().is_empty() => Ok(value.trim()),
            _ => variable
                .default
                .ok_or(SettingsError::Missing { name: variable.name, description: variable.description }),
        }
    }

    fn parse<T>(&self, variable: Variable) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.raw(variable)?;
        raw.parse().map_err(|e: T::Err| SettingsError::Malformed {
            name: variable.name,
            // Never echo a secret value back, even a malformed one.
            reason: if variable.secret { e.to_string() } else { format!("{e} (value {raw:?})") },
        })
    }

    fn parse_positive<T>(&self, variable: Variable) -> Result<T, SettingsError>
    where
        T: FromStr + Default + PartialEq,
        T::Err: fmt::Display,
    {
        let value: T = self.parse(variable)?;
        if value == T::default() {
            return Err(SettingsError::Malformed { name: variable.name, reason: "must be above 0".into() });
        }
        Ok(value)
    }

    /// `DATABASE_URL` alone, for tools that need nothing else.
    pub fn database_url(&self) -> Result<SecretString, SettingsError> {
        self.secret_url(DATABASE_URL, &["postgres", "postgresql"])
    }

    fn secret_url(&self, variable: Variable, schemes: &[&str]) -> Result<SecretString, SettingsError> {
        let raw = self.raw(variable)?;
        let scheme = raw.split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
        if !schemes.contains(&scheme) {
            return Err(SettingsError::Malformed {
                name: variable.name,
                reason: format!("must be a URL starting with {}://", schemes.join(":// or ")),
            });
        }
        Ok(SecretString::from(raw.to_owned()))
    }

    /// `CLOUD_TASKS_QUEUE_COUNT`, within the queues Terraform may make.
    fn queue_count(&self) -> Result<u8, SettingsError> {
        let count: u8 = self.parse(CLOUD_TASKS_QUEUE_COUNT)?;
        if !(1..=MAX_DELIVERY_QUEUES).contains(&count) {
            let reason = format!("must be from 1 to {MAX_DELIVERY_QUEUES}, got {count}");
            return Err(SettingsError::Malformed { name: CLOUD_TASKS_QUEUE_COUNT.name, reason });
        }
        Ok(count)
    }

    /// A nonce must be remembered as long as its signature is accepted (its
    /// age plus the allowed clock skew), or a replay could slip through.
    fn nonce_ttl(&self) -> Result<u64, SettingsError> {
        let ttl: u64 = self.parse_positive(NONCE_TTL_SECONDS)?;
        let max_age: u64 = self.parse_positive(SIGNATURE_MAX_AGE_SECONDS)?;
        if ttl < max_age + MAX_CLOCK_SKEW_SECONDS {
            return Err(SettingsError::Malformed {
                name: NONCE_TTL_SECONDS.name,
                reason: format!(
                    "must be at least SIGNATURE_MAX_AGE_SECONDS + {MAX_CLOCK_SKEW_SECONDS} ({}), got {ttl}",
                    max_age + MAX_CLOCK_SKEW_SECONDS
                ),
            });
        }
        Ok(ttl)
    }

    /// An integer from `min` to `max`.
    fn in_range(&self, variable: Variable, min: u32, max: u32) -> Result<u32, SettingsError> {
        let value: u32 = self.parse(variable)?;
        if !(min..=max).contains(&value) {
            return Err(SettingsError::Malformed {
                name: variable.name,
                reason: format!("must be {min} to {max}, got {value}"),
            });
        }
        Ok(value)
    }

    /// A value, or `None` when empty.
    fn optional(&self, variable: Variable) -> Result<Option<String>, SettingsError> {
        Ok(Some(self.raw(variable)?.to_owned()).filter(|value| !value.is_empty()))
    }

    /// An empty value is `None`; any other must parse.
    fn optional_parsed<T>(&self, variable: Variable) -> Result<Option<T>, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        if self.raw(variable)?.is_empty() { Ok(None) } else { self.parse(variable).map(Some) }
    }

    /// `PLATFORM_SIGNING_KEY_PREVIOUS`: a key other than the current one.
    fn previous_platform_key(&self) -> Result<Option<PlatformSigningKey>, SettingsError> {
        let previous = self.optional_parsed(PLATFORM_SIGNING_KEY_PREVIOUS)?;
        if previous.is_some() && previous == self.optional_parsed(PLATFORM_SIGNING_KEY)? {
            let reason =
                "is the same key as PLATFORM_SIGNING_KEY; set it to the key being replaced, or leave it empty".into();
            return Err(SettingsError::Malformed { name: PLATFORM_SIGNING_KEY_PREVIOUS.name, reason });
        }
        Ok(previous)
    }

    /// A Google resource name such as `projects/P/topics/T`: `collections`
    /// are the fixed parts (`["projects", "topics"]`), each followed by an id.
    fn resource_name(&self, variable: Variable, collections: &[&str]) -> Result<String, SettingsError> {
        let name = self.raw(variable)?;
        let parts: Vec<&str> = name.split('/').collect();
        let well_formed = parts.len() == 2 * collections.len()
            && parts.chunks(2).zip(collections).all(|(pair, collection)| pair[0] == *collection && !pair[1].is_empty());
        if !well_formed {
            // `projects/PROJECT/topics/TOPIC`: each collection, then its id's placeholder.
            let pattern: Vec<String> = collections
                .iter()
                .map(|collection| format!("{collection}/{}", collection.trim_end_matches('s').to_uppercase()))
                .collect();
            return Err(SettingsError::Malformed {
                name: variable.name,
                reason: format!("must be {}, got {name:?}", pattern.join("/")),
            });
        }
        Ok(name.to_owned())
    }

    fn http_url(&self, variable: Variable) -> Result<String, SettingsError> {
        let url = self.raw(variable)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SettingsError::Malformed {
                name: variable.name,
                reason: format!("must be an http(s) URL, got {url:?}"),
            });
        }
        Ok(url.to_owned())
    }

    /// Comma-separated web origins, as a browser sends them in `Origin`:
    /// `http(s)://host[:port]`, no path, no trailing slash.
    fn origins(&self, variable: Variable) -> Result<Vec<String>, SettingsError> {
        let raw = self.raw(variable)?;
        raw.split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(|origin| {
                let malformed = |why: &str| SettingsError::Malformed {
                    name: variable.name,
                    reason: format!("{origin:?} is not an origin ({why}); expected e.g. https://app.example.com"),
                };
                let url = url::Url::parse(origin).map_err(|e| malformed(&e.to_string()))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(malformed("the scheme must be http or https"));
                }
                // A browser's `Origin` is exactly the serialized origin: no path,
                // query, user or trailing slash, a lowercase host, no default port.
                let serialized = url.origin().ascii_serialization();
                if serialized != origin {
                    return Err(malformed(&format!("a browser would send {serialized:?}")));
                }
                Ok(serialized)
            })
            .collect()
    }

    /// `WEBHOOK_SECRET_KEY` or `WEBHOOK_SECRET_KMS_KEY`, not both; a
    /// malformed local key is named, never echoed.
    fn webhook_secret_key(&self) -> Result<Option<WebhookSecretKey>, SettingsError> {
        let local = self.optional(WEBHOOK_SECRET_KEY)?;
        let kms = match self.optional(WEBHOOK_SECRET_KMS_KEY)? {
            Some(_) => {
                Some(self.resource_name(WEBHOOK_SECRET_KMS_KEY, &["projects", "locations", "keyRings", "cryptoKeys"])?)
            }
            None => None,
        };
        match (local, kms) {
            (Some(_), Some(_)) => Err(SettingsError::Malformed {
                name: WEBHOOK_SECRET_KEY.name,
                reason: "set it or WEBHOOK_SECRET_KMS_KEY, not both".into(),
            }),
            (None, Some(key)) => {
                Ok(Some(WebhookSecretKey::Kms { key, endpoint: self.optional(WEBHOOK_SECRET_KMS_ENDPOINT)? }))
            }
            (None, None) => Ok(None),
            (Some(local), None) => {
                use base64::Engine;
                let malformed = |reason: String| SettingsError::Malformed { name: WEBHOOK_SECRET_KEY.name, reason };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(local.trim())
                    .map_err(|_| malformed("must be base64 (e.g. `openssl rand -base64 32`)".into()))?;
                if bytes.len() != 32 {
                    return Err(malformed(format!("must be 32 bytes in base64, got {} bytes", bytes.len())));
                }
                Ok(Some(WebhookSecretKey::Local(SecretSlice::from(bytes))))
            }
        }
    }

    fn reputation_prior(&self) -> Result<ReputationPrior, SettingsError> {
        let weight: Decimal = self.parse(RATING_PRIOR_WEIGHT)?;
        if weight <= Decimal::ZERO || weight > Decimal::ONE_THOUSAND {
            let reason = format!("must be above 0 and at most 1000, got {weight}");
            return Err(SettingsError::Malformed { name: RATING_PRIOR_WEIGHT.name, reason });
        }
        let mean: Decimal = self.parse(RATING_PRIOR_MEAN)?;
        if mean < Decimal::ONE || mean > Decimal::from(5) {
            let reason = format!("must be from 1 to 5, got {mean}");
            return Err(SettingsError::Malformed { name: RATING_PRIOR_MEAN.name, reason });
        }
        Ok(ReputationPrior { weight, mean })
    }

    fn ratio(&self, variable: Variable) -> Result<f64, SettingsError> {
        let ratio: f64 = self.parse(variable)?;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(SettingsError::Malformed {
                name: variable.name,
                reason: format!("must be 0 to 1, got {ratio}"),
            });
        }
        Ok(ratio)
    }

    fn bucket(&self, capacity: Variable, refill: Variable) -> Result<BucketSettings, SettingsError> {
        Ok(BucketSettings { capacity: self.parse_positive(capacity)?, refill_per_min: self.parse_positive(refill)? })
    }
}

impl Settings {
    /// Reads the process environment (and `.env`); the error names the first
    /// bad setting.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&SettingsSource::from_env()?)
    }

    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            port: source.parse(PORT)?,
            database_url: source.database_url()?,
            database_max_connections: source.parse_positive(DATABASE_MAX_CONNECTIONS)?,
            discovery_database_connections: source.parse(DISCOVERY_DATABASE_CONNECTIONS)?,
            redis_url: source.secret_url(REDIS_URL, &["redis", "rediss"])?,
            redis_pool_size: source.parse_positive(REDIS_POOL_SIZE)?,
            redis_key_prefix: source.raw(REDIS_KEY_PREFIX)?.to_owned(),
            redis_ca_cert: source.optional(REDIS_CA_CERT)?,
            platform_signing_key: source.optional_parsed(PLATFORM_SIGNING_KEY)?,
            platform_signing_key_previous: source.previous_platform_key()?,
            allow_http_endpoints: source.parse(ALLOW_HTTP_ENDPOINTS)?,
            platform_fee: source.parse(PLATFORM_FEE_PERCENT)?,
            reputation_prior: source.reputation_prior()?,
            job_accept_timeout_seconds: source.in_range(
                JOB_ACCEPT_TIMEOUT_SECONDS,
                1,
                MAX_JOB_ACCEPT_TIMEOUT_SECONDS,
            )?,
            rate_limits: RateLimitSettings {
                discovery: source.bucket(RATE_LIMIT_DISCOVERY_CAPACITY, RATE_LIMIT_DISCOVERY_REFILL_PER_MIN)?,
                read: source.bucket(RATE_LIMIT_READ_CAPACITY, RATE_LIMIT_READ_REFILL_PER_MIN)?,
                write: source.bucket(RATE_LIMIT_WRITE_CAPACITY, RATE_LIMIT_WRITE_REFILL_PER_MIN)?,
                write_ip: source.bucket(RATE_LIMIT_WRITE_IP_CAPACITY, RATE_LIMIT_WRITE_IP_REFILL_PER_MIN)?,
            },
            public_reads: std::time::Duration::from_millis(source.parse(PUBLIC_READ_CACHE_MS)?),
            signature_max_age_seconds: source.parse_positive(SIGNATURE_MAX_AGE_SECONDS)?,
            nonce_ttl_seconds: source.nonce_ttl()?,
            webhook_timeout_seconds: source.parse_positive(WEBHOOK_TIMEOUT_SECONDS)?,
            webhook_retry_schedule: source.parse(WEBHOOK_RETRY_SCHEDULE)?,
            webhook_endpoint_concurrency: source.parse_positive(WEBHOOK_ENDPOINT_CONCURRENCY)?,
            delivery_attempts_retention_days: source.parse_positive(DELIVERY_ATTEMPTS_RETENTION_DAYS)?,
            cloud_tasks: CloudTasksSettings {
                queue: source.resource_name(CLOUD_TASKS_QUEUE, &["projects", "locations", "queues"])?,
                queue_count: source.queue_count()?,
                endpoint: source.optional(CLOUD_TASKS_ENDPOINT)?,
                invoker_service_account: source.optional(CLOUD_TASKS_INVOKER_SA)?,
                worker_url: source.http_url(WEBHOOK_WORKER_URL)?,
            },
            pubsub: PubSubSettings {
                events_topic: source.resource_name(PUBSUB_EVENTS_TOPIC, &["projects", "topics"])?,
                dead_letter_topic: source.resource_name(PUBSUB_DEAD_LETTER_TOPIC, &["projects", "topics"])?,
                endpoint: source.optional(PUBSUB_ENDPOINT)?,
            },
            endpoint_disable_after_seconds: source.parse_positive(ENDPOINT_DISABLE_AFTER_SECONDS)?,
            worker_shared_secret: source.optional(WORKER_SHARED_SECRET)?.map(SecretString::from),
            google_oidc_jwks_url: source.http_url(GOOGLE_OIDC_JWKS_URL)?,
            webhook_secret_key: source.webhook_secret_key()?,
            egress_allow_cidrs: source.raw(EGRESS_ALLOW_CIDRS)?.to_owned(),
            cors_allowed_origins: source.origins(CORS_ALLOWED_ORIGINS)?,
            request_body_limit_bytes: source.parse_positive(REQUEST_BODY_LIMIT_BYTES)?,
            shutdown_grace_seconds: source.parse(SHUTDOWN_GRACE_SECONDS)?,
            log_format: source.parse(LOG_FORMAT)?,
            log_filter: source.raw(RUST_LOG)?.to_owned(),
            tracing: TraceSettings {
                otlp_endpoint: source.optional(OTEL_EXPORTER_OTLP_ENDPOINT)?,
                sample_ratio: source.ratio(TRACE_SAMPLE_RATIO)?,
                project: source.optional(GOOGLE_CLOUD_PROJECT)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn minimal() -> SettingsSource {
        SettingsSource::from_pairs([
            ("DATABASE_URL", "postgres://postgres:hunter2@localhost/db"),
            ("REDIS_URL", "redis://localhost:6379"),
        ])
    }

    #[test]
    fn defaults_come_from_seed_001() {
        let settings = Settings::from_source(&minimal()).unwrap();
        assert_eq!(settings.port, 8080);
        assert_eq!(settings.reputation_prior, ReputationPrior { weight: Decimal::TEN, mean: Decimal::from(3) });
        assert_eq!(settings.platform_fee.value(), Decimal::from_str_exact("0.025").unwrap());
        assert_eq!(settings.rate_limits.discovery, BucketSettings { capacity: 60, refill_per_min: 20 });
        assert_eq!(settings.rate_limits.read, BucketSettings { capacity: 120, refill_per_min: 60 });
        assert_eq!(settings.rate_limits.write, BucketSettings { capacity: 30, refill_per_min: 10 });
        assert_eq!(settings.rate_limits.write_ip, BucketSettings { capacity: 120, refill_per_min: 60 });
        assert_eq!(settings.signature_max_age_seconds, 30);
        assert_eq!(settings.nonce_ttl_seconds, 60);
        assert_eq!(settings.webhook_timeout_seconds, 10);
        assert_eq!(settings.webhook_retry_schedule.step_after(8), Some(std::time::Duration::from_secs(36_000)));
        assert_eq!(settings.webhook_retry_schedule.step_after(9), None, "nine attempts");
        assert_eq!(settings.webhook_endpoint_concurrency, 10);
        assert_eq!(settings.cloud_tasks.queues(), ["projects/local/locations/local/queues/webhook-delivery"]);
        assert!(settings.cloud_tasks.endpoint.is_none() && settings.worker_shared_secret.is_none());
        assert!(!settings.allow_http_endpoints);
        assert_eq!(settings.database_url.expose_secret(), "postgres://postgres:hunter2@localhost/db");
    }

    #[test]
    fn delivery_queues_after_the_first_are_numbered_from_one() {
        let mut source = minimal();
        source.set("CLOUD_TASKS_QUEUE", "projects/p/locations/l/queues/webhook-delivery");
        source.set("CLOUD_TASKS_QUEUE_COUNT", "3");
        let queues = Settings::from_source(&source).unwrap().cloud_tasks.queues();
        let base = "projects/p/locations/l/queues/webhook-delivery";
        assert_eq!(queues, [base.to_owned(), format!("{base}-1"), format!("{base}-2")]);
    }

    #[test]
    fn a_missing_setting_is_named() {
        let err = Settings::from_source(&SettingsSource::default()).unwrap_err();
        assert!(matches!(err, SettingsError::Missing { name: "DATABASE_URL", .. }));
        assert!(err.to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn a_malformed_setting_is_named_with_its_value() {
        let mut source = minimal();
        source.set("PORT", "eighty");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("PORT") && err.contains("eighty"), "{err}");

        let mut source = minimal();
        source.set("PLATFORM_FEE_PERCENT", "1.5");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("PLATFORM_FEE_PERCENT") && err.contains("below 1"), "{err}");

        for (name, value, reason) in [
            ("RATING_PRIOR_WEIGHT", "0", "above 0"),
            ("RATING_PRIOR_WEIGHT", "many", "many"),
            ("RATING_PRIOR_MEAN", "5.5", "from 1 to 5"),
        ] {
            let mut source = minimal();
            source.set(name, value);
            let err = Settings::from_source(&source).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(reason), "{err}");
        }

        let mut source = minimal();
        source.set("NONCE_TTL_SECONDS", "20");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("NONCE_TTL_SECONDS") && err.contains("35"), "{err}");

        let mut source = minimal();
        source.set("CLOUD_TASKS_QUEUE", "webhook-delivery");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("CLOUD_TASKS_QUEUE"), "{err}");

        for count in ["0", "65", "300", "four"] {
            let mut source = minimal();
            source.set("CLOUD_TASKS_QUEUE_COUNT", count);
            let err = Settings::from_source(&source).unwrap_err().to_string();
            assert!(err.contains("CLOUD_TASKS_QUEUE_COUNT") && err.contains(count), "{err}");
        }

        let mut source = minimal();
        source.set("PUBSUB_EVENTS_TOPIC", "projects/p/subscriptions/registry-events");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("PUBSUB_EVENTS_TOPIC") && err.contains("projects/PROJECT/topics/TOPIC"), "{err}");

        let mut source = minimal();
        source.set("WEBHOOK_RETRY_SCHEDULE", "5s,tomorrow");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("WEBHOOK_RETRY_SCHEDULE") && err.contains("tomorrow"), "{err}");

        let mut source = minimal();
        source.set("RATE_LIMIT_WRITE_CAPACITY", "0");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("RATE_LIMIT_WRITE_CAPACITY"), "{err}");
    }

    #[test]
    fn the_job_accept_timeout_is_a_day_by_default_and_at_most_a_week() {
        assert_eq!(Settings::from_source(&minimal()).unwrap().job_accept_timeout_seconds, 86_400);
        for (value, accepted) in [("1", true), ("604800", true), ("0", false), ("604801", false), ("-5", false)] {
            let mut source = minimal();
            source.set("JOB_ACCEPT_TIMEOUT_SECONDS", value);
            match Settings::from_source(&source) {
                Ok(settings) => {
                    assert!(accepted, "{value} is refused");
                    assert_eq!(settings.job_accept_timeout_seconds.to_string(), value);
                }
                Err(err) => {
                    assert!(!accepted, "{value} is accepted: {err}");
                    let err = err.to_string();
                    assert!(err.contains("JOB_ACCEPT_TIMEOUT_SECONDS") && err.contains(value), "{err}");
                }
            }
        }
    }

    #[test]
    fn cors_origins_are_none_by_default_and_must_be_bare_origins() {
        assert!(Settings::from_source(&minimal()).unwrap().cors_allowed_origins.is_empty());

        let mut source = minimal();
        source.set("CORS_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:5173,");
        assert_eq!(
            Settings::from_source(&source).unwrap().cors_allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );

        for value in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://APP.example.com",
            "https://app.example.com:443",
            "https://user@app.example.com",
            "*",
        ] {
            let mut source = minimal();
            source.set("CORS_ALLOWED_ORIGINS", format!("https://ok.example.com,{value}"));
            let err = Settings::from_source(&source).unwrap_err().to_string();
            assert!(err.contains("CORS_ALLOWED_ORIGINS") && err.contains(value), "{value}: {err}");
        }
    }

    #[test]
    fn a_malformed_secret_is_named_but_never_echoed() {
        let mut source = minimal();
        source.set("DATABASE_URL", "mysql://root:hunter2@localhost/db");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!format!("{:?}", Settings::from_source(&minimal()).unwrap()).contains("hunter2"));
    }

    #[test]
    fn the_webhook_secret_key_is_32_bytes_of_base64_never_echoed_or_kms() {
        assert!(Settings::from_source(&minimal()).unwrap().webhook_secret_key.is_none());

        let mut source = minimal();
        source.set("WEBHOOK_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        let settings = Settings::from_source(&source).unwrap();
        assert!(
            matches!(&settings.webhook_secret_key, Some(WebhookSecretKey::Local(key)) if key.expose_secret().len() == 32)
        );
        assert!(!format!("{settings:?}").contains("MDEyMzQ1"), "never printed");

        for (value, reason) in [("c2hvcnQta2V5", "got 9 bytes"), ("not base64 at all!", "must be base64")] {
            let mut source = minimal();
            source.set("WEBHOOK_SECRET_KEY", value);
            let err = Settings::from_source(&source).unwrap_err().to_string();
            assert!(err.contains("WEBHOOK_SECRET_KEY") && err.contains(reason), "{err}");
            assert!(!err.contains(value), "the value is not echoed: {err}");
        }

        let kms = "projects/p/locations/us-west1/keyRings/agent-registry/cryptoKeys/webhook-secrets";
        let mut source = minimal();
        source.set("WEBHOOK_SECRET_KMS_KEY", kms);
        let settings = Settings::from_source(&source).unwrap();
        assert!(
            matches!(&settings.webhook_secret_key, Some(WebhookSecretKey::Kms { key, endpoint: None }) if key == kms)
        );
        source.set("WEBHOOK_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");

        let mut source = minimal();
        source.set("WEBHOOK_SECRET_KMS_KEY", "webhook-secrets");
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("WEBHOOK_SECRET_KMS_KEY") && err.contains("keyRings/KEYRING"), "{err}");
    }

    #[test]
    fn platform_signing_keys_are_optional_here_and_refused_when_malformed_or_repeated() {
        let settings = Settings::from_source(&minimal()).unwrap();
        assert!(settings.platform_signing_key.is_none() && settings.platform_signing_key_previous.is_none());

        let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        let mut source = minimal();
        source.set("PLATFORM_SIGNING_KEY", key);
        source.set("PLATFORM_SIGNING_KEY_PREVIOUS", "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=");
        let settings = Settings::from_source(&source).unwrap();
        assert_eq!(settings.platform_signing_key.unwrap().signing_key().to_bytes(), [7u8; 32]);
        assert!(!format!("{:?}", Settings::from_source(&source).unwrap()).contains(key));

        for (name, value, reason) in [
            ("PLATFORM_SIGNING_KEY", "dev-signing-key-not-for-production", "not base64"),
            ("PLATFORM_SIGNING_KEY", "c2hvcnQ=", "5 bytes"),
            ("PLATFORM_SIGNING_KEY_PREVIOUS", key, "same key"),
        ] {
            let mut source = minimal();
            source.set("PLATFORM_SIGNING_KEY", key);
            source.set(name, value);
            let err = Settings::from_source(&source).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(reason), "{err}");
            assert!(!err.contains("dev-signing") && !err.contains("c2hvcnQ"), "the value is not echoed: {err}");
        }
    }

    #[test]
    fn env_file_is_a_fallback() {
        let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, "PORT=9999\nDATABASE_URL=postgres://file/db\n").unwrap();
        let mut source = SettingsSource::from_env_file(&path).unwrap();
        source.set("REDIS_URL", "redis://localhost");
        source.set("PORT", "7000");
        let settings = Settings::from_source(&source).unwrap();
        assert_eq!(settings.port, 7000, "explicit values win over the file");
        assert_eq!(settings.database_url.expose_secret(), "postgres://file/db");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_variable_is_documented_in_env_example_and_readme() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let example = std::fs::read_to_string(root.join("deploy/.env.example")).unwrap();
        let readme = std::fs::read_to_string(root.join("docs/OPERATIONS.md")).unwrap();
        for variable in VARIABLES {
            assert!(example.contains(&format!("{}=", variable.name)), "{} not in deploy/.env.example", variable.name);
            assert!(readme.contains(&format!("| `{}` |", variable.name)), "{} not in README's table", variable.name);
        }
    }
}
