//! Webhook deliveries as their owners see them: every attempt with its
//! answer, and a resend.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use shared::domain::{AgentId, DeliveryId, EventId, JobId};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Authenticated, Principal};
use crate::error::{ApiError, Problem, SignedRequestRefusals};
use crate::jobs::find_for_party;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(job_deliveries))
        .routes(routes!(agent_deliveries))
        .routes(routes!(resend_delivery))
}

/// How many deliveries an agent's listing shows, newest first.
const AGENT_LISTING: i64 = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    #[schema(value_type = String, example = "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b")]
    pub id: DeliveryId,
    #[schema(value_type = String)]
    pub event_id: EventId,
    pub event_type: String,
    #[schema(value_type = Option<String>)]
    pub job_id: Option<JobId>,
    pub target_url: String,
    /// `pending` (not yet queued), `dispatched`, `delivered` or `dead`.
    pub status: String,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    pub latency_ms: i32,
    pub response_status: Option<i32>,
    /// The first 4 KB of the answer.
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// `delivered`, `retry`, `dead`, `gone` (410: endpoint disabled) or `refused` (not a public address).
    pub outcome: String,
}

struct DeliveryRow {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    job_id: Option<Uuid>,
    target_url: String,
    status: String,
    last_error: Option<String>,
    created_at: OffsetDateTime,
}

/// The deliveries of one job (signed by its client or agent).
#[utoipa::path(get, path = "/v1/jobs/{id}/deliveries", tag = "deliveries",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Vec<Delivery>), (status = 404, description = "no such job of yours", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn job_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let id: JobId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    find_for_party(&state, id, &principal).await?;
    let (agent, client) = recipient(&principal);
    // Each party sees its own deliveries: the other's answers are not its business.
    let rows = sqlx::query_as!(
        DeliveryRow,
        "SELECT d.id, d.event_id, e.type AS event_type, d.job_id, d.target_url, d.status, d.last_error, d.created_at
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.job_id = $1 AND (d.agent_id = $2 OR d.client_id = $3) ORDER BY e.position",
        id.as_uuid(),
        agent,
        client
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

/// The deliveries to an agent's endpoint, newest first (signed by the agent).
#[utoipa::path(get, path = "/v1/agents/{id}/deliveries", tag = "deliveries",
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = Vec<Delivery>), SignedRequestRefusals))]
async fn agent_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let id: AgentId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    principal.require_agent(id)?;
    let rows = sqlx::query_as!(
        DeliveryRow,
        "SELECT d.id, d.event_id, e.type AS event_type, d.job_id, d.target_url, d.status, d.last_error, d.created_at
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.agent_id = $1 ORDER BY d.created_at DESC LIMIT $2",
        id.as_uuid(),
        AGENT_LISTING
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(with_attempts(&state, rows).await?))
}

async fn with_attempts(state: &AppState, rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>, ApiError> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let attempts = sqlx::query!(
        "SELECT delivery_id, attempt, started_at, latency_ms, response_status, response_body, error, outcome
         FROM delivery_attempts WHERE delivery_id = ANY($1) ORDER BY id",
        &ids
    )
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Delivery {
            id: DeliveryId::from_uuid(row.id),
            event_id: EventId::from_uuid(row.event_id),
            event_type: row.event_type,
            job_id: row.job_id.map(JobId::from_uuid),
            target_url: row.target_url,
            status: row.status,
            last_error: row.last_error,
            created_at: row.created_at,
            attempts: attempts
                .iter()
                .filter(|attempt| attempt.delivery_id == row.id)
                .map(|attempt| Attempt {
                    attempt: attempt.attempt,
                    started_at: attempt.started_at,
                    latency_ms: attempt.latency_ms,
                    response_status: attempt.response_status,
                    response_body: attempt.response_body.clone(),
                    error: attempt.error.clone(),
                    outcome: attempt.outcome.clone(),
                })
                .collect(),
        })
        .collect())
}

/// Send a delivery again, with a fresh round of attempts (signed by its
/// recipient: the agent for its endpoint, the client for its callbacks).
#[utoipa::path(post, path = "/v1/deliveries/{id}/resend", tag = "deliveries",
    params(("id" = String, Path, description = "delivery id")),
    responses((status = 202, description = "queued again"), (status = 404, description = "no such delivery of yours", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn resend_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    let id: DeliveryId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let (agent, client) = recipient(&principal);
    // Only a finished delivery is sent again, as a new generation: pushes of
    // the old task are then ignored, and the new task gets a new name (Cloud
    // Tasks keeps old names for about an hour). The new round joins this
    // request's trace.
    let outcome = sqlx::query!(
        r#"WITH mine AS (
               SELECT d.id, d.status, COALESCE(a.endpoint_disabled_at IS NOT NULL, false) AS endpoint_disabled,
                      a.endpoint_url AS agent_endpoint
               FROM webhook_deliveries d LEFT JOIN agents a ON a.id = d.agent_id
               WHERE d.id = $1 AND (d.agent_id = $2 OR d.client_id = $3)
           ), resent AS (
               UPDATE webhook_deliveries d SET status = 'pending', generation = generation + 1, lease_until = NULL,
                                               finished_at = NULL, dispatched_at = NULL, dead_lettered_at = NULL,
                                               traceparent = $4,
                                               -- To the agent's endpoint as it is now, not as it was.
                                               target_url = COALESCE(mine.agent_endpoint, d.target_url)
               FROM mine WHERE d.id = mine.id AND mine.status IN ('delivered', 'dead') AND NOT mine.endpoint_disabled
               RETURNING d.id
           )
           SELECT (SELECT status FROM mine) AS "status?", (SELECT endpoint_disabled FROM mine) AS "endpoint_disabled?",
                  EXISTS (SELECT 1 FROM resent) AS "resent!""#,
        id.as_uuid(),
        agent,
        client,
        shared::telemetry::current_traceparent(),
    )
    .fetch_one(&state.db)
    .await?;
    match (outcome.resent, outcome.status) {
        (true, _) => {
            state.outbox.committed();
            Ok(StatusCode::ACCEPTED)
        }
        (false, None) => Err(ApiError::NotFound(format!("no delivery {id} of yours"))),
        (false, Some(status)) if matches!(status.as_str(), "delivered" | "dead") => Err(ApiError::Conflict(format!(
            "delivery {id} goes to your disabled endpoint: enable it (POST /v1/agents/<your id>/endpoint/enable), then resend"
        ))),
        (false, Some(status)) => Err(ApiError::Conflict(format!(
            "delivery {id} is {status}: it is still being sent; resend it once it is delivered or dead"
        ))),
    }
}

/// The recipient columns a principal matches: agents own their endpoint's
/// deliveries, clients their callbacks'.
fn recipient(principal: &Principal) -> (Option<Uuid>, Option<Uuid>) {
    match principal {
        Principal::Agent(agent) => (Some(agent.as_uuid()), None),
        Principal::Client(client) => (None, Some(client.as_uuid())),
        Principal::NewKey(_) => (None, None),
    }
}
