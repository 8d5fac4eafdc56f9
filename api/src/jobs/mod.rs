//! Jobs: a client hires an agent; the agent accepts, completes or fails it;
//! the client may cancel. Every change writes its event and webhook
//! deliveries in the same transaction (see [`crate::outbox`]).

pub mod model;
mod store;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::domain::{EventId, JobId, JobStatus, JobTransition, Price};
use shared::events::{self, Aggregate};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authenticated, Principal, Signed};
use crate::error::{ApiError, Problem, SignedRequestRefusals};
use crate::extract::ValidQuery;
use crate::state::AppState;
use crate::{cursor, outbox};
use model::{CompleteJob, CreateJob, FailJob, Job, JobPage, JobRow, MAX_FAILURE_REASON_CHARS};
use store::NewJob;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(accept_job))
        .routes(routes!(complete_job))
        .routes(routes!(fail_job))
        .routes(routes!(cancel_job))
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Hire an agent (signed by a client). With an `Idempotency-Key`, repeating
/// the same request returns the first answer; the same key with another
/// body is a 422.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = CreateJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 characters; makes retries safe")),
    responses(
        (status = 201, description = "created (or the first answer, replayed)", body = Job),
        SignedRequestRefusals,
        (status = 409, description = "the agent is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Signed { principal, body }: Signed<CreateJob>,
) -> Result<Response, ApiError> {
    let Principal::Client(client) = principal else {
        return Err(ApiError::Forbidden("only clients create jobs; sign with your cli_… keyid".into()));
    };
    let key = idempotency_key(&headers)?;
    let request_hash = Sha256::digest(serde_json::to_vec(&body).map_err(anyhow::Error::from)?).to_vec();
    if let Some(url) = &body.callback_url {
        crate::agents::require_allowed_scheme(&state, "callback_url", url)?;
    }

    // A new key (the common case) costs no lookup: a used one shows up as
    // the job not written although the agent's terms allow it, or, when the
    // agent has changed since, as a refusal that a replay overrides.
    let created_at = now_in_microseconds();
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
        created_at,
        updated_at: created_at,
    };
    let event_data = serde_json::to_value(&job).map_err(anyhow::Error::from)?;
    let new_job = NewJob {
        job: &job,
        idempotency_key: key,
        request_hash: &request_hash,
        event: (EventId::generate(), &event_data),
        traceparent: shared::telemetry::current_traceparent(),
    };
    let refusal = match store::create(&state.db, &new_job).await? {
        None => ApiError::invalid("agent_id", format!("no agent with id {}", job.agent_id)),
        Some(terms) if !terms.agent_active => ApiError::Conflict(format!("agent {} is deactivated", job.agent_id)),
        Some(terms) if job.price.value() > terms.agent_price => {
            let limit = format!("must be at most the agent's price, {}", terms.agent_price.normalize());
            ApiError::invalid("price", limit)
        }
        Some(terms) if terms.created => {
            state.outbox.committed();
            tracing::info!(job_id = %job.id, agent_id = %job.agent_id, "job created");
            return Ok(created(job, false));
        }
        // The terms allow it but the key was used: answer as the first request did.
        Some(_) => anyhow::anyhow!("idempotent job vanished").into(),
    };
    if let Some(key) = key
        && let Some(first) = replay(&state, client, key, &request_hash).await?
    {
        return Ok(created(first, true));
    }
    Err(refusal)
}

/// Now, at the microsecond precision Postgres stores, so the job answered,
/// its event and the job read back later carry the same time.
fn now_in_microseconds() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
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
    let key = value.to_str().ok().map(str::trim).filter(|key| (1..=255).contains(&key.len()));
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
    let row = store::find(&state.db, id).await?.ok_or_else(|| anyhow::anyhow!("idempotent job {id} vanished"))?;
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
    params(("id" = String, Path, description = "job id, `job_…`")),
    responses(
        (status = 200, body = Job),
        (status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
    )
)]
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Job>, ApiError> {
    let id = parse_job_id(&id)?;
    Ok(Json(find_for_party(&state, id, &principal).await?))
}

/// The job, if `principal` is its client or agent; otherwise it is not found
/// (its existence is nobody else's business).
pub async fn find_for_party(state: &AppState, id: JobId, principal: &Principal) -> Result<Job, ApiError> {
    let row = store::find(&state.db, id).await?.filter(|row| is_party(row, principal));
    Ok(Job::try_from(row.ok_or_else(|| job_not_found(id))?)?)
}

fn is_party(row: &JobRow, principal: &Principal) -> bool {
    match principal {
        Principal::Agent(agent) => agent.as_uuid() == row.agent_id,
        Principal::Client(client) => client.as_uuid() == row.client_id,
        Principal::NewKey(_) => false,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `client` or `agent`: must be what the signer is (defaults to it).
    role: Option<String>,
    #[param(value_type = Option<String>)]
    status: Option<JobStatus>,
    /// 1–100 (default 20).
    limit: Option<u16>,
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
    Authenticated(principal): Authenticated,
) -> Result<Json<JobPage>, ApiError> {
    let (party, as_agent) = match (&principal, query.role.as_deref()) {
        (Principal::Client(client), None | Some("client")) => (client.as_uuid(), false),
        (Principal::Agent(agent), None | Some("agent")) => (agent.as_uuid(), true),
        (_, Some(role)) if !["client", "agent"].contains(&role) => {
            return Err(ApiError::invalid("role", "must be client or agent"));
        }
        _ => return Err(ApiError::Forbidden("role must be what the signing key is (client or agent)".into())),
    };
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be from 1 to 100"));
    }
    let before = match &query.cursor {
        Some(text) => {
            let (key, id) = cursor::decode(text, "jobs").map_err(|e| ApiError::invalid("cursor", e))?;
            let at = cursor::parse_time_key(&key)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API issued"))?;
            (at, id)
        }
        None => cursor::NEWEST_FIRST_START,
    };
    let mut rows = store::list(&state.db, party, as_agent, query.status, before, i64::from(limit) + 1).await?;
    let has_more = rows.len() > usize::from(limit);
    rows.truncate(usize::from(limit));
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(cursor::encode("jobs", &cursor::time_key(last.created_at), last.id)),
        _ => None,
    };
    let jobs = rows.into_iter().map(Job::try_from).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Accept a pending job (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/accept", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 409, description = "not pending", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn accept_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Job>, ApiError> {
    transition(&state, &id, &principal, JobTransition::Accept, None, None).await
}

/// Complete an accepted job with its result (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/complete", tag = "jobs", request_body = CompleteJob,
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 409, description = "not accepted", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn complete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Signed { principal, body }: Signed<CompleteJob>,
) -> Result<Json<Job>, ApiError> {
    transition(&state, &id, &principal, JobTransition::Complete, Some(&body.result), None).await
}

/// Fail a pending or accepted job, saying why (signed by its agent).
#[utoipa::path(post, path = "/v1/jobs/{id}/fail", tag = "jobs", request_body = FailJob,
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 409, description = "already finished", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn fail_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Signed { principal, body }: Signed<FailJob>,
) -> Result<Json<Job>, ApiError> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_FAILURE_REASON_CHARS {
        return Err(ApiError::invalid("reason", format!("must be 1 to {MAX_FAILURE_REASON_CHARS} characters")));
    }
    transition(&state, &id, &principal, JobTransition::Fail, None, Some(reason)).await
}

/// Cancel a pending or accepted job (signed by its client).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 409, description = "already finished", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Job>, ApiError> {
    transition(&state, &id, &principal, JobTransition::Cancel, None, None).await
}

/// One conditional update moves the job, and the event and its deliveries
/// are written with it; when the update matches nothing, a read says why.
async fn transition(
    state: &AppState,
    id: &str,
    principal: &Principal,
    transition: JobTransition,
    result: Option<&serde_json::Value>,
    failure_reason: Option<&str>,
) -> Result<Json<Job>, ApiError> {
    let id = parse_job_id(id)?;
    let party = match (principal, transition.by_agent()) {
        (Principal::Agent(agent), true) => agent.as_uuid(),
        (Principal::Client(client), false) => client.as_uuid(),
        _ => {
            let who = if transition.by_agent() { "the job's agent" } else { "the job's client" };
            return Err(ApiError::Forbidden(format!("only {who} may {} it", transition.verb())));
        }
    };
    let mut tx = state.db.begin().await?;
    let Some(row) = store::transition(&mut tx, id, party, transition, result, failure_reason).await? else {
        drop(tx);
        let job = find_for_party(state, id, principal).await?;
        return Err(ApiError::Conflict(format!("job {id} is {}; it cannot {}", job.status, transition.verb())));
    };
    let job = Job::try_from(row)?;
    let event = events::record(&mut tx, Aggregate::Job(job.id), transition.event_type(), &job).await?;
    if transition == JobTransition::Cancel {
        outbox::deliver_to_agent(&mut tx, event, job.id, job.agent_id).await?;
    } else {
        outbox::deliver_to_callback(&mut tx, event, job.id).await?;
    }
    tx.commit().await?;
    state.outbox.committed();
    tracing::info!(job_id = %job.id, status = %job.status, "job moved");
    Ok(Json(job))
}

fn parse_job_id(id: &str) -> Result<JobId, ApiError> {
    id.parse().map_err(|e| ApiError::invalid("id", e))
}

fn job_not_found(id: JobId) -> ApiError {
    ApiError::NotFound(format!("no job {id} of yours"))
}
