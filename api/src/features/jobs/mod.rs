//! Jobs: a client hires an agent; the agent accepts (before `accept_by`),
//! completes (before the `deadline`) or fails it; the client may cancel; a
//! job left pending or accepted past its window expires (the expiry task).
//! Every change writes its event and webhook deliveries in the same
//! transaction (see [`crate::outbox`]).

pub mod model;
mod store;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::batches::{Batched, writers_for};
use shared::domain::{EventId, JobId, JobStatus, JobTransition, Price};
use shared::events::{self, Aggregate};
use shared::settings::MAX_JOB_ACCEPT_TIMEOUT_SECONDS;
use shared::signing::IDEMPOTENCY_KEY;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tracing::Instrument;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::features::receipts;
use crate::http::auth::{Authenticated, Signed, Signer};
use crate::http::cursor;
use crate::http::error::{ApiError, BodyRefusals, Problem, SignedRequestRefusals};
use crate::http::extract::{ValidQuery, require_deliverable};
use crate::http::path_id::PathId;
use crate::http::principal::Principal;
use crate::http::state::AppState;
use crate::outbox;
use crate::resources::job::{self, Job};
use model::{CompleteJob, CreateJob, FailJob, JobPage, MAX_FAILURE_REASON_CHARS};
use store::{Creation, Creations, NewJob};

/// The routes, with the statement that creates concurrent requests' jobs
/// together, on the pool of generic plans.
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(accept_job))
        .routes(routes!(complete_job))
        .routes(routes!(fail_job))
        .routes(routes!(cancel_job))
        // The pool of generic plans serves discovery's tag walks too.
        .layer(Extension(Batched::start(state.generic_db.clone(), Creations, writers_for(&state.generic_db, 2))))
}

/// Hire an agent (signed by a client). With an `Idempotency-Key`, repeating
/// the same request returns the first answer; the same key with another
/// body is a 422. The agent must accept by `accept_by` (the request's
/// `accept_within_seconds`, default `JOB_ACCEPT_TIMEOUT_SECONDS`, or the
/// `deadline` if sooner) and complete by the `deadline`, or the job expires.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = CreateJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; makes retries safe: a retry with the same key and body gets the first answer. The signature must cover it (`idempotency-key`), or the request is a 401 `signature-incomplete`", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "created (or the first answer, replayed)", body = Job),
        SignedRequestRefusals, BodyRefusals,
        (status = 409, description = "the agent is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_job(
    State(state): State<AppState>,
    Extension(creations): Extension<Batched<Creations>>,
    headers: HeaderMap,
    Signed { signer, body }: Signed<CreateJob>,
) -> Result<Response, ApiError> {
    let Principal::Client(client) = signer.principal else {
        return Err(ApiError::Forbidden("only clients create jobs; sign with your cli_… keyid".into()));
    };
    let key = idempotency_key(&headers)?;
    // Refused here, not by Postgres: in the shared statement it would fail
    // the other requests' jobs too, and they would run again.
    if holds_nul(&body.input) {
        return Err(ApiError::nul_in_body());
    }
    let request_hash = Sha256::digest(serde_json::to_vec(&body).map_err(anyhow::Error::from)?).to_vec();
    if let Some(url) = &body.callback_url {
        require_deliverable(&state, "callback_url", url).await?;
    }

    // A new key (the common case) costs no lookup: a used one shows up as
    // the insert failing on the key, or, when the agent has changed since,
    // as a refusal that a replay overrides.
    let created_at = shared::db::now_in_microseconds();
    // A retry after its deadline passed still gets the first answer.
    let (accept_by, deadline) = match windows(&body, created_at, state.settings.job_accept_timeout) {
        Ok(windows) => windows,
        Err(refusal) => return replay_or(&state, client, key, &request_hash, refusal).await,
    };
    let job = Job {
        id: JobId::generate(),
        client_id: client,
        agent_id: body.agent_id,
        status: JobStatus::Pending,
        input: body.input,
        result: None,
        failure_reason: None,
        price: body.price,
        fee: Price::from_stored(fee(body.price, state.settings.platform_fee.value())),
        callback_url: body.callback_url.map(|url| url.as_str().to_owned()),
        accept_by: Some(accept_by),
        deadline,
        expired_because: None,
        created_at,
        updated_at: created_at,
    };
    let event_data = serde_json::to_value(job.clone().for_agent()).map_err(anyhow::Error::from)?;
    let new_job = NewJob {
        job: job.clone(),
        idempotency_key: key.map(str::to_owned),
        request_hash: request_hash.clone(),
        event: (EventId::generate(), event_data),
        traceparent: shared::telemetry::current_traceparent(),
        signer_key: signer.key().as_bytes().to_vec(),
    };
    // With the concurrent requests' jobs, in one statement.
    let creation = creations.run(new_job).instrument(tracing::info_span!("sql create job")).await?;
    let (signer_current, agent) = match creation {
        Creation::Created => {
            state.outbox.committed();
            tracing::info!(job_id = %job.id, agent_id = %job.agent_id, "job created");
            return Ok(created(job, false));
        }
        // The terms allow it but the key was used: answer as the first request did.
        Creation::KeyUsed => {
            let vanished = anyhow::anyhow!("idempotent job vanished").into();
            return replay_or(&state, client, key, &request_hash, vanished).await;
        }
        Creation::NotWritten { signer_current, agent } => (signer_current, agent),
    };
    signer.checked_in_write(signer_current)?;
    let refusal = match agent {
        None => ApiError::invalid("agent_id", format!("no agent with id {}", job.agent_id)),
        Some(terms) if !terms.active => ApiError::Conflict(format!("agent {} is deactivated", job.agent_id)),
        Some(terms) if job.price.value() > terms.price => {
            let limit = format!("must be at most the agent's price, {}", terms.price.normalize());
            ApiError::invalid("price", limit)
        }
        // The insert writes or fails on the key: terms that allow it leave nothing else.
        Some(_) => anyhow::anyhow!("a job the agent's terms allow was not written").into(),
    };
    replay_or(&state, client, key, &request_hash, refusal).await
}

/// Whether `value` holds a NUL anywhere (Postgres's `jsonb` cannot).
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// The first answer, when a job was created with this key by the same
/// request; otherwise the refusal.
async fn replay_or(
    state: &AppState,
    client: shared::domain::ClientId,
    key: Option<&str>,
    request_hash: &[u8],
    refusal: ApiError,
) -> Result<Response, ApiError> {
    if let Some(key) = key
        && let Some(first) = replay(state, client, key, request_hash).await?
    {
        return Ok(created(first, true));
    }
    Err(refusal)
}

/// The shortest accept window a request may ask for.
const MIN_ACCEPT_WITHIN_SECONDS: u32 = 60;
/// How far ahead a deadline may be.
const MAX_DEADLINE_AHEAD: Duration = Duration::days(365);

/// The job's `accept_by` and `deadline`: the accept window runs from
/// creation, and a deadline before its end ends it (a job that cannot be
/// done in time cannot be accepted).
fn windows(
    body: &CreateJob,
    created_at: OffsetDateTime,
    default_window: std::time::Duration,
) -> Result<(OffsetDateTime, Option<OffsetDateTime>), ApiError> {
    if let Some(seconds) = body.accept_within_seconds
        && !(MIN_ACCEPT_WITHIN_SECONDS..=MAX_JOB_ACCEPT_TIMEOUT_SECONDS).contains(&seconds)
    {
        let range = format!("must be {MIN_ACCEPT_WITHIN_SECONDS} to {MAX_JOB_ACCEPT_TIMEOUT_SECONDS} seconds");
        return Err(ApiError::invalid("accept_within_seconds", range));
    }
    // Stored at microseconds, so the job answered is the job read back.
    let deadline = body.deadline.map(shared::db::in_microseconds);
    if let Some(deadline) = deadline {
        if deadline <= created_at {
            return Err(ApiError::invalid("deadline", "must be in the future"));
        }
        if deadline > created_at + MAX_DEADLINE_AHEAD {
            return Err(ApiError::invalid("deadline", "must be at most a year ahead"));
        }
    }
    let window =
        body.accept_within_seconds.map_or(default_window, |seconds| std::time::Duration::from_secs(seconds.into()));
    let window_end = created_at + window;
    let accept_by = deadline.map_or(window_end, |deadline| deadline.min(window_end));
    Ok((accept_by, deadline))
}

/// The platform fee: price × rate, rounded half away from zero to the
/// 6 decimals money is stored with.
fn fee(price: Price, rate: Decimal) -> Decimal {
    (price.value() * rate).round_dp_with_strategy(Price::MAX_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    // As documented (`^[!-~]{1,255}$`): no spaces, inside or around.
    let visible = |key: &&str| (1..=255).contains(&key.len()) && key.bytes().all(|byte| byte.is_ascii_graphic());
    let key = value.to_str().ok().filter(visible);
    key.map(Some).ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters"))
}

/// The job first created with this key, if the request is the same.
async fn replay(
    state: &AppState,
    client: shared::domain::ClientId,
    key: &str,
    request_hash: &[u8],
) -> Result<Option<Job>, ApiError> {
    let Some((id, first_hash)) = store::find_by_idempotency_key(&state.db, client, key).await? else {
        return Ok(None);
    };
    if first_hash != request_hash {
        return Err(ApiError::invalid("Idempotency-Key", "was already used for a different request"));
    }
    let row = job::find(&state.db, id).await?.ok_or_else(|| anyhow::anyhow!("idempotent job {id} vanished"))?;
    Ok(Some(Job::try_from(row)?))
}

fn created(job: Job, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, Json(job)).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Read a job (signed by its client or its agent).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(PathId<JobId>),
    responses(
        (status = 200, body = Job),
        (status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
    )
)]
async fn get_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Authenticated(signer): Authenticated,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(job::find_for_party(&state, id, &signer.principal).await?))
}

/// Which party's side of its jobs a listing shows: `client` or `agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Agent,
}

impl Role {
    pub const ALL: [Self; 2] = [Self::Client, Self::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Agent => "agent",
        }
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let role = String::deserialize(deserializer)?;
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == role)
            .ok_or_else(|| serde::de::Error::custom("must be client or agent"))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `client` or `agent`: must be what the signer is (defaults to it).
    #[param(value_type = Option<String>)]
    role: Option<Role>,
    /// Only jobs in this status.
    #[param(value_type = Option<String>)]
    status: Option<JobStatus>,
    /// 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u16>,
    /// `next_cursor` of the previous page, with the same filters.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// List your jobs, newest first (signed by a client or an agent).
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(JobQuery),
    responses(
        (status = 200, body = JobPage),
        SignedRequestRefusals,
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<JobQuery>,
    Authenticated(signer): Authenticated,
) -> Result<Json<JobPage>, ApiError> {
    let (party, as_agent) = match (&signer.principal, query.role) {
        (Principal::Client(client), None | Some(Role::Client)) => (client.as_uuid(), false),
        (Principal::Agent(agent), None | Some(Role::Agent)) => (agent.as_uuid(), true),
        _ => return Err(ApiError::Forbidden("role must be what the signing key is (client or agent)".into())),
    };
    let limit = crate::http::extract::page_size(query.limit)?;
    let before =
        cursor::newest_first_after(query.cursor.as_deref(), "jobs").map_err(|e| ApiError::invalid("cursor", e))?;
    let rows = store::list(&state.db, party, as_agent, query.status, before, i64::from(limit) + 1).await?;
    let (rows, next_cursor) = cursor::newest_first_page(rows, limit, "jobs", |row| (row.created_at, row.id));
    let jobs = rows
        .into_iter()
        .map(|row| Job::try_from(row).map(|job| if as_agent { job.for_agent() } else { job }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Accept a pending job before its `accept_by` (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/accept", tag = "jobs",
    params(PathId<JobId>),
    responses((status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = Job), (status = 409, description = "not pending, or its accept window passed (`accept_by`)", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn accept_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Authenticated(signer): Authenticated,
) -> Result<Json<Job>, ApiError> {
    transition(&state, id, &signer, JobTransition::Accept, None, None).await
}

/// Complete an accepted job with its result before its `deadline` (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/complete", tag = "jobs", request_body = CompleteJob,
    params(PathId<JobId>),
    responses((status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = Job), (status = 409, description = "not accepted, or its deadline passed", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals, BodyRefusals))]
async fn complete_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Signed { signer, body }: Signed<CompleteJob>,
) -> Result<Json<Job>, ApiError> {
    transition(&state, id, &signer, JobTransition::Complete, Some(&body.result), None).await
}

/// Fail a pending or accepted job, saying why (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/fail", tag = "jobs", request_body = FailJob,
    params(PathId<JobId>),
    responses((status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = Job), (status = 409, description = "already finished", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals, BodyRefusals))]
async fn fail_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Signed { signer, body }: Signed<FailJob>,
) -> Result<Json<Job>, ApiError> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_FAILURE_REASON_CHARS {
        return Err(ApiError::invalid("reason", format!("must be 1 to {MAX_FAILURE_REASON_CHARS} characters")));
    }
    // Like every other text field: line breaks and tabs, no other control characters.
    if reason.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::invalid("reason", "must not contain control characters"));
    }
    transition(&state, id, &signer, JobTransition::Fail, None, Some(reason)).await
}

/// Cancel a pending or accepted job (signed by its client).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(PathId<JobId>),
    responses((status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = Job), (status = 409, description = "already finished", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn cancel_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Authenticated(signer): Authenticated,
) -> Result<Json<Job>, ApiError> {
    transition(&state, id, &signer, JobTransition::Cancel, None, None).await
}

/// One conditional update moves the job, and the event, its deliveries and
/// (for a job that completed or failed) its receipt are written with it;
/// when the update matches nothing, a read says why.
async fn transition(
    state: &AppState,
    id: JobId,
    signer: &Signer,
    transition: JobTransition,
    result: Option<&serde_json::Value>,
    failure_reason: Option<&str>,
) -> Result<Json<Job>, ApiError> {
    let principal = &signer.principal;
    let party = match (principal, transition.by_agent()) {
        (Principal::Agent(agent), true) => agent.as_uuid(),
        (Principal::Client(client), false) => client.as_uuid(),
        _ => {
            let who = if transition.by_agent() { "the job's agent" } else { "the job's client" };
            return Err(ApiError::Forbidden(format!("only {who} may {} it", transition.verb())));
        }
    };
    let mut tx = signer.begin_write(&state.db).await?;
    let Some(row) = store::transition(&mut tx, id, party, transition, result, failure_reason).await? else {
        drop(tx);
        let job = job::find_for_party(state, id, principal).await?;
        return Err(ApiError::Conflict(refusal(&job, transition)));
    };
    let job = Job::try_from(row)?;
    if matches!(job.status, JobStatus::Completed | JobStatus::Failed) {
        let finished = receipts::FinishedJob {
            id: job.id,
            agent_id: job.agent_id,
            client_id: job.client_id,
            status: job.status,
            price: job.price,
            fee: job.fee,
            created_at: job.created_at,
            finished_at: job.updated_at,
            result: job.result.as_ref(),
        };
        receipts::issue(&mut tx, &state.platform_keys, finished).await?;
    }
    let seen_by_agent = job.clone().for_agent();
    let event = events::record(&mut tx, Aggregate::Job(job.id), transition.event_type(), &seen_by_agent).await?;
    if transition == JobTransition::Cancel {
        outbox::deliver_to_agent(&mut tx, event, job.id, job.agent_id).await?;
    } else {
        outbox::deliver_to_callback(&mut tx, event, job.id).await?;
    }
    tx.commit().await?;
    state.outbox.committed();
    tracing::info!(job_id = %job.id, status = %job.status, "job moved");
    Ok(Json(if transition.by_agent() { seen_by_agent } else { job }))
}

/// Why `transition` did not move `job` (its party's): its status, or its
/// window passed.
fn refusal(job: &Job, transition: JobTransition) -> String {
    let verb = transition.verb();
    let passed = |window: shared::domain::JobWindow| {
        let at = match window {
            shared::domain::JobWindow::AcceptWindow => job.accept_by,
            shared::domain::JobWindow::Deadline => job.deadline,
        };
        let at = at.and_then(|at| at.format(&Rfc3339).ok()).map(|at| format!(" at {at}")).unwrap_or_default();
        format!("its {} passed{at}", window.describe())
    };
    match (job.status, job.expired_because, transition.window()) {
        (JobStatus::Expired, Some(window), _) => {
            format!("job {} expired: {}; it cannot {verb}", job.id, passed(window))
        }
        // Still in the status it moves from: only its window can have refused it.
        (status, _, Some(window)) if transition.from().contains(&status) => {
            format!("job {} is {status} but {}; it cannot {verb}", job.id, passed(window))
        }
        (status, ..) => format!("job {} is {status}; it cannot {verb}", job.id),
    }
}
