//! A local stand-in for Google Cloud Tasks (v2 REST API, HTTP targets only), so
//! the production enqueuer — the official `google-cloud-tasks-v2` client with
//! an endpoint override and anonymous credentials — runs unchanged in tests and
//! in `cargo xtask dev`. It lives in the `tests` crate so that it can never be
//! linked into a production binary.
//!
//! What it models: CreateTask (named-task deduplication, `scheduleTime`,
//! `dispatchDeadline`), GetTask and DeleteTask; dispatch with the headers Cloud
//! Tasks adds, retries with the queue's exponential backoff, `Retry-After`, and
//! a dispatch rate limit and in-flight cap per queue; and an outage switch.
//! Every queue has the same configuration, as the project's delivery queues
//! do (`infra/modules/tasks`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Retry, rate and deadline settings of every queue.
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// Attempts per task, the first included; the task is dropped after the last.
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Times the backoff doubles before it grows linearly up to `max_backoff`.
    pub max_doublings: u32,
    /// Dispatch starts per second of each queue (at least 1).
    pub max_dispatches_per_second: u32,
    /// Dispatches in flight at once in each queue (at least 1): a task waits
    /// for a free one, as with the queue's `maxConcurrentDispatches`.
    pub max_concurrent_dispatches: u32,
    /// How long a dispatch may wait for a response when the task sets no
    /// `dispatchDeadline` (Cloud Tasks: 10 minutes).
    pub dispatch_deadline: Duration,
    /// `Authorization` value added to every dispatch, standing in for the OIDC
    /// token Cloud Tasks would mint for a task with `oidcToken`.
    pub authorization: Option<String>,
}

impl Default for StandInConfig {
    /// The `webhook-delivery` queue as `infra/modules/tasks` makes it: its
    /// retries are the crash net for pushes the worker does not take.
    fn default() -> Self {
        Self {
            max_attempts: 20,
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            max_doublings: 5,
            max_dispatches_per_second: 10,
            max_concurrent_dispatches: 100,
            dispatch_deadline: Duration::from_secs(600),
            authorization: None,
        }
    }
}

impl StandInConfig {
    /// The default retry shape, scaled down so a whole retry cycle takes a
    /// few seconds: 50, 100, 200, 400 ms, then 400 ms, between 20 attempts.
    pub fn fast_for_tests() -> Self {
        Self {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            max_dispatches_per_second: 1000,
            max_concurrent_dispatches: 1000,
            dispatch_deadline: Duration::from_secs(5),
            ..Self::default()
        }
    }

    /// Reads the `CLOUD_TASKS_STANDIN_*` variables documented on the
    /// `cloud_tasks_standin` binary; unset ones keep their default.
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        let millis =
            |name, default: Duration| env_number(name, default.as_millis() as u64, 0).map(Duration::from_millis);
        Ok(Self {
            max_attempts: env_number("CLOUD_TASKS_STANDIN_MAX_ATTEMPTS", defaults.max_attempts, 1)?,
            min_backoff: millis("CLOUD_TASKS_STANDIN_MIN_BACKOFF_MS", defaults.min_backoff)?,
            max_backoff: millis("CLOUD_TASKS_STANDIN_MAX_BACKOFF_MS", defaults.max_backoff)?,
            max_doublings: env_number("CLOUD_TASKS_STANDIN_MAX_DOUBLINGS", defaults.max_doublings, 0)?,
            max_dispatches_per_second: env_number(
                "CLOUD_TASKS_STANDIN_MAX_DISPATCHES_PER_SECOND",
                defaults.max_dispatches_per_second,
                1,
            )?,
            max_concurrent_dispatches: env_number(
                "CLOUD_TASKS_STANDIN_MAX_CONCURRENT_DISPATCHES",
                defaults.max_concurrent_dispatches,
                1,
            )?,
            dispatch_deadline: millis("CLOUD_TASKS_STANDIN_DISPATCH_DEADLINE_MS", defaults.dispatch_deadline)?,
            authorization: std::env::var("CLOUD_TASKS_STANDIN_AUTHORIZATION").ok().filter(|value| !value.is_empty()),
        })
    }

    /// The wait after attempt `retry + 1` failed: `min_backoff` doubled up to
    /// `max_doublings` times, then growing by that last interval each retry,
    /// capped at `max_backoff` (Cloud Tasks' RetryConfig semantics).
    fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.min(self.max_doublings);
        let doubled = self.min_backoff.saturating_mul(2u32.saturating_pow(doublings));
        doubled.saturating_mul(retry - doublings + 1).min(self.max_backoff)
    }
}

fn env_number<T: FromStr + PartialOrd + std::fmt::Display>(name: &str, default: T, min: T) -> anyhow::Result<T> {
    let Ok(raw) = std::env::var(name) else { return Ok(default) };
    match raw.parse::<T>() {
        Ok(value) if value >= min => Ok(value),
        _ => anyhow::bail!("{name} must be a whole number of at least {min}, got {raw:?}"),
    }
}

/// A task as CreateTask accepted it.
#[derive(Clone, Debug)]
pub struct CreatedTask {
    /// Full name: `projects/P/locations/L/queues/Q/tasks/T`.
    pub name: String,
    pub method: Method,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The task's `oidcToken` (`serviceAccountEmail`, `audience`), if any.
    pub oidc_token: Option<Value>,
    pub schedule_time: OffsetDateTime,
}

/// One dispatch of a task.
#[derive(Clone, Debug)]
pub struct DispatchAttempt {
    pub task: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The HTTP status the target answered, or why there was no answer.
    pub response: Result<u16, String>,
    /// When the request was sent.
    pub at: Instant,
}

/// The stand-in server and its dispatchers; dropping it stops both.
pub struct CloudTasksStandIn {
    shared: Arc<Shared>,
    port: u16,
    server: JoinHandle<()>,
}

impl CloudTasksStandIn {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub async fn start(config: StandInConfig) -> anyhow::Result<Self> {
        Self::start_on(0, config).await
    }

    pub async fn start_on(port: u16, config: StandInConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let port = listener.local_addr()?.port();
        let http = reqwest::Client::builder()
            // Cloud Tasks treats a redirect as a failed attempt; it never follows one.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let authorization = match &config.authorization {
            Some(value) => {
                let mut value =
                    HeaderValue::try_from(value).context("the Authorization value is not a valid header")?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            authorization,
            limits: Mutex::default(),
            config,
            http,
            available: AtomicBool::new(true),
            queue: Mutex::default(),
        });
        let tasks = "/v2/projects/{project}/locations/{location}/queues/{queue}/tasks";
        let app = axum::Router::new()
            .route(tasks, post(create_task))
            .route(&format!("{tasks}/{{task}}"), get(get_task).delete(delete_task))
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Unknown method or resource.") })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("cloud_tasks_standin: server stopped: {error}");
            }
        });
        Ok(Self { shared, port, server })
    }

    /// The value for the client's `with_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn created_tasks(&self) -> Vec<CreatedTask> {
        self.shared.queue().created.clone()
    }

    pub fn attempts(&self) -> Vec<DispatchAttempt> {
        self.shared.queue().attempts.clone()
    }

    /// Waits until no task is scheduled, in flight or waiting for a retry;
    /// false if that did not happen within `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let idle = async {
            while !self.shared.queue().pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(timeout, idle).await.is_ok()
    }

    /// `false` simulates a Cloud Tasks outage: CreateTask answers 503
    /// UNAVAILABLE (dispatching goes on, as it would in a control-plane outage).
    pub fn set_available(&self, up: bool) {
        self.shared.available.store(up, Ordering::SeqCst);
    }
}

impl Drop for CloudTasksStandIn {
    fn drop(&mut self) {
        self.server.abort();
        let mut queue = self.shared.queue();
        // A CreateTask still running on an open connection must not start a
        // dispatcher that outlives us.
        queue.stopped = true;
        for (_, pending) in queue.pending.drain() {
            pending.dispatcher.abort();
        }
    }
}

struct Shared {
    config: StandInConfig,
    http: reqwest::Client,
    available: AtomicBool,
    /// `config.authorization`, checked once at start.
    authorization: Option<HeaderValue>,
    /// Each queue's limits, by its full name, made on its first task.
    limits: Mutex<HashMap<String, Arc<QueueLimits>>>,
    queue: Mutex<Queue>,
}

/// One queue's dispatch limits.
struct QueueLimits {
    /// Earliest start of the queue's next dispatch: the rate limiter.
    next_dispatch: Mutex<Instant>,
    /// `config.max_concurrent_dispatches` permits.
    in_flight: Semaphore,
}

#[derive(Default)]
struct Queue {
    stopped: bool,
    /// Every name ever created: Cloud Tasks refuses a name for about an hour
    /// after its task ran or was deleted, longer than any test or dev session.
    names: HashSet<String>,
    pending: HashMap<String, Pending>,
    created: Vec<CreatedTask>,
    attempts: Vec<DispatchAttempt>,
}

/// A task not yet done: what GetTask shows and DeleteTask cancels.
struct Pending {
    task: Arc<Task>,
    schedule_time: OffsetDateTime,
    dispatch_count: u32,
    response_count: u32,
    dispatcher: AbortHandle,
}

struct Task {
    created: CreatedTask,
    queue: String,
    limits: Arc<QueueLimits>,
    short_name: String,
    /// The task's headers as sent, minus those Cloud Tasks ignores.
    headers: HeaderMap,
    deadline: Duration,
    create_time: OffsetDateTime,
    /// `httpRequest` exactly as given, echoed back like Cloud Tasks does.
    http_request: Value,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover rather than cascade.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limits of queue `parent` (its full name).
    fn limits(&self, parent: &str) -> Arc<QueueLimits> {
        let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        let make = || QueueLimits {
            next_dispatch: Mutex::new(Instant::now()),
            in_flight: Semaphore::new(self.config.max_concurrent_dispatches.max(1) as usize),
        };
        limits.entry(parent.to_owned()).or_insert_with(|| Arc::new(make())).clone()
    }

    /// Waits for this dispatch's turn under its queue's `max_dispatches_per_second`.
    async fn dispatch_slot(&self, queue: &QueueLimits) {
        let interval = Duration::from_secs(1) / self.config.max_dispatches_per_second.max(1);
        let slot = {
            let mut next = queue.next_dispatch.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A Google-style error body, which the official client turns into a
/// `Status` with the matching code.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    fn not_found(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("The task no longer exists: {name}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.status.as_u16(), "message": self.message, "status": self.code}});
        (self.status, Json(body)).into_response()
    }
}

#[derive(Deserialize)]
struct CreateTaskRequest {
    task: Option<TaskInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskInput {
    #[serde(default)]
    name: String,
    http_request: Option<Value>,
    schedule_time: Option<String>,
    dispatch_deadline: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpRequestInput {
    url: String,
    http_method: Option<EnumValue>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
    oidc_token: Option<Value>,
}

/// Enums arrive as numbers from the official client (it asks for
/// `enum-encoding=int`) and as names from anything else.
#[derive(Deserialize)]
#[serde(untagged)]
enum EnumValue {
    Number(usize),
    Name(String),
}

const HTTP_METHODS: [&str; 8] = ["HTTP_METHOD_UNSPECIFIED", "POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"];

fn http_method(value: Option<EnumValue>) -> Result<Method, ApiError> {
    let name = match value {
        None => Some(HTTP_METHODS[0]),
        Some(EnumValue::Number(number)) => HTTP_METHODS.get(number).copied(),
        Some(EnumValue::Name(name)) => HTTP_METHODS.into_iter().find(|known| *known == name),
    };
    match name {
        None => Err(ApiError::invalid("Unknown httpMethod.")),
        Some("HTTP_METHOD_UNSPECIFIED") => Ok(Method::POST),
        Some(name) => name.parse().map_err(|_| ApiError::invalid("Unknown httpMethod.")),
    }
}

/// The task's headers as Cloud Tasks sends them: those it owns are dropped,
/// and a body without a `Content-Type` is sent as `application/octet-stream`.
fn task_headers(headers: &BTreeMap<String, String>, has_body: bool) -> Result<HeaderMap, ApiError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if ["host", "content-length", "user-agent"].contains(&lower.as_str())
            || lower.starts_with("x-google-")
            || lower.starts_with("x-appengine-")
        {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| ApiError::invalid("Invalid header name."))?;
        let value = HeaderValue::from_str(value).map_err(|_| ApiError::invalid("Invalid header value."))?;
        map.insert(name, value);
    }
    if has_body && !map.contains_key(CONTENT_TYPE) {
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    }
    Ok(map)
}

/// A protobuf JSON duration such as `"30s"` or `"0.5s"`.
fn parse_duration(value: &str) -> Option<Duration> {
    value.strip_suffix('s')?.parse().ok().and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
}

fn rfc3339(at: OffsetDateTime) -> String {
    // Formatting a UTC time as RFC 3339 cannot fail for years 0..=9999.
    at.format(&Rfc3339).unwrap_or_default()
}

async fn create_task(
    State(shared): State<Arc<Shared>>,
    Path((project, location, queue)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !shared.available.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
        ));
    }
    let request: CreateTaskRequest =
        serde_json::from_slice(&body).map_err(|error| ApiError::invalid(format!("Invalid JSON payload: {error}")))?;
    let input = request.task.ok_or_else(|| ApiError::invalid("task is required."))?;
    let raw = input.http_request.ok_or_else(|| ApiError::invalid("The stand-in supports HTTP targets only."))?;
    let target =
        HttpRequestInput::deserialize(&raw).map_err(|error| ApiError::invalid(format!("httpRequest: {error}")))?;
    match reqwest::Url::parse(&target.url) {
        Ok(url) if ["http", "https"].contains(&url.scheme()) => {}
        _ => return Err(ApiError::invalid("httpRequest.url must be an absolute http(s) URL.")),
    }
    let method = http_method(target.http_method)?;
    let body = STANDARD.decode(&target.body).map_err(|_| ApiError::invalid("httpRequest.body must be base64."))?;
    let headers = task_headers(&target.headers, !body.is_empty())?;

    // Both ids become header values on dispatch, so they must be plain.
    let is_id =
        |id: &str| (1..=500).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if !is_id(&queue) {
        return Err(ApiError::invalid("Invalid queue id."));
    }
    let parent = format!("projects/{project}/locations/{location}/queues/{queue}");
    let name = if input.name.is_empty() {
        format!("{parent}/tasks/{}", uuid::Uuid::new_v4().simple())
    } else if input.name.strip_prefix(&format!("{parent}/tasks/")).is_some_and(is_id) {
        input.name
    } else {
        return Err(ApiError::invalid(format!("Task name must be {parent}/tasks/ID with ID of [A-Za-z0-9_-].")));
    };
    let create_time = OffsetDateTime::now_utc();
    let schedule_time = match input.schedule_time {
        None => create_time,
        Some(at) => OffsetDateTime::parse(&at, &Rfc3339).map_err(|_| ApiError::invalid("Invalid scheduleTime."))?,
    };
    let deadline = match input.dispatch_deadline {
        None => shared.config.dispatch_deadline,
        Some(deadline) => parse_duration(&deadline).ok_or_else(|| ApiError::invalid("Invalid dispatchDeadline."))?,
    };
    let short_name = name.rsplit('/').next().unwrap_or_default().to_owned();
    let created = CreatedTask {
        name: name.clone(),
        method,
        url: target.url,
        headers: target.headers,
        body,
        oidc_token: target.oidc_token,
        schedule_time,
    };
    let limits = shared.limits(&parent);
    let task = Arc::new(Task { created, queue, limits, short_name, headers, deadline, create_time, http_request: raw });

    let mut state = shared.queue();
    if state.stopped {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "The stand-in is stopping."));
    }
    if !state.names.insert(name.clone()) {
        return Err(ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", "Requested entity already exists"));
    }
    state.created.push(task.created.clone());
    // Spawned under the lock, so the dispatcher cannot finish (and remove its
    // entry) before the entry exists.
    let dispatcher = tokio::spawn(dispatch(shared.clone(), task.clone())).abort_handle();
    let pending = Pending { task, schedule_time, dispatch_count: 0, response_count: 0, dispatcher };
    let body = task_json(&pending);
    state.pending.insert(name, pending);
    Ok(Json(body))
}

async fn get_task(
    State(shared): State<Arc<Shared>>,
    Path((project, location, queue, task)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = format!("projects/{project}/locations/{location}/queues/{queue}/tasks/{task}");
    shared.queue().pending.get(&name).map(|pending| Json(task_json(pending))).ok_or_else(|| ApiError::not_found(&name))
}

async fn delete_task(
    State(shared): State<Arc<Shared>>,
    Path((project, location, queue, task)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = format!("projects/{project}/locations/{location}/queues/{queue}/tasks/{task}");
    let pending = shared.queue().pending.remove(&name).ok_or_else(|| ApiError::not_found(&name))?;
    pending.dispatcher.abort();
    Ok(Json(json!({})))
}

/// The Task resource in its BASIC view.
fn task_json(pending: &Pending) -> Value {
    let task = &pending.task;
    json!({
        "name": task.created.name,
        "httpRequest": task.http_request,
        "scheduleTime": rfc3339(pending.schedule_time),
        "createTime": rfc3339(task.create_time),
        "dispatchDeadline": format!("{}.{:09}s", task.deadline.as_secs(), task.deadline.subsec_nanos()),
        "dispatchCount": pending.dispatch_count,
        "responseCount": pending.response_count,
        "view": "BASIC",
    })
}

/// Delivers one task: waits for its schedule time, then attempts it until a
/// 2xx or `max_attempts`, and finally forgets it (its name stays taken).
async fn dispatch(shared: Arc<Shared>, task: Arc<Task>) {
    let config = &shared.config;
    let name = &task.created.name;
    let mut eta = task.created.schedule_time;
    let mut responses = 0;
    let mut previous_status = None;
    let mut retry_reason = None;
    for retry in 0..config.max_attempts {
        if let Ok(wait) = Duration::try_from(eta - OffsetDateTime::now_utc()) {
            tokio::time::sleep(wait).await;
        }
        let Ok(_in_flight) = task.limits.in_flight.acquire().await else { return };
        shared.dispatch_slot(&task.limits).await;

        let mut headers = task.headers.clone();
        let mut add = |name: &'static str, value: String| {
            // Ids were checked at creation and the rest are numbers, so this always succeeds.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        };
        add("x-cloudtasks-queuename", task.queue.clone());
        add("x-cloudtasks-taskname", task.short_name.clone());
        add("x-cloudtasks-taskretrycount", retry.to_string());
        add("x-cloudtasks-taskexecutioncount", responses.to_string());
        add("x-cloudtasks-tasketa", format!("{}.{:06}", eta.unix_timestamp(), eta.microsecond()));
        if let Some(status) = previous_status {
            add("x-cloudtasks-taskpreviousresponse", format!("{status}"));
        }
        if let Some(reason) = retry_reason.take() {
            add("x-cloudtasks-taskretryreason", reason);
        }
        headers.insert(USER_AGENT, HeaderValue::from_static("Google-Cloud-Tasks"));
        if let Some(authorization) = &shared.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }

        let at = Instant::now();
        let result = shared
            .http
            .request(task.created.method.clone(), &task.created.url)
            .headers(headers)
            .body(task.created.body.clone())
            .timeout(task.deadline)
            .send()
            .await;
        let (response, reason, retry_after) = match result {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let retry_after = answer.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()?.parse().ok());
                (Ok(status), format!("HTTP {status}"), retry_after)
            }
            Err(error) if error.is_timeout() => {
                (Err(format!("no response within {:?}", task.deadline)), "DEADLINE_EXCEEDED".to_owned(), None)
            }
            Err(error) => (Err(shared::error_chain::render(&error)), "UNAVAILABLE".to_owned(), None),
        };
        let attempt = retry + 1;
        let done = matches!(response, Ok(status) if (200..300).contains(&status));
        let delay = config.backoff(retry).max(Duration::from_secs(retry_after.unwrap_or(0)));
        let outcome = if done {
            "done".to_owned()
        } else if attempt < config.max_attempts {
            format!("retrying in {delay:?}")
        } else {
            "giving up".to_owned()
        };
        let answer = response.as_ref().map_or_else(Clone::clone, |status| format!("HTTP {status}"));
        eprintln!("cloud_tasks_standin: {name} attempt {attempt}/{}: {answer}, {outcome}", config.max_attempts);

        previous_status = response.as_ref().ok().copied();
        responses += u32::from(previous_status.is_some());
        retry_reason = Some(reason);
        eta = OffsetDateTime::now_utc() + delay;
        {
            let mut queue = shared.queue();
            queue.attempts.push(DispatchAttempt { task: name.clone(), attempt, response, at });
            if let Some(pending) = queue.pending.get_mut(name) {
                pending.dispatch_count = attempt;
                pending.response_count = responses;
                pending.schedule_time = eta;
            }
        }
        if done {
            break;
        }
    }
    shared.queue().pending.remove(name);
}
