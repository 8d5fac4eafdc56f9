//! Agents: register, read, update, deactivate.
//!
//! Registration is signed by the key being registered (keyid = that base64
//! public key); afterwards the agent signs with keyid = its id, and only its
//! own key may update or deactivate it.

pub mod model;
mod store;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::domain::{AgentId, EndpointUrl, WebhookSecret};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authenticated, Signed};
use crate::error::{ApiError, Problem, SignedRequestRefusals};
use crate::state::AppState;
use model::{Agent, RegisterAgent, RegisteredAgent, UpdateAgent};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register_agent)).routes(routes!(get_agent, update_agent, deactivate_agent))
}

/// Register an agent. The answer holds its webhook secret, shown only this once.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    request_body = RegisterAgent,
    responses(
        (status = 201, description = "registered", body = RegisteredAgent),
        SignedRequestRefusals,
        (status = 409, description = "the public key is already registered", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn register_agent(
    State(state): State<AppState>,
    Signed { principal, body: agent }: Signed<RegisterAgent>,
) -> Result<(StatusCode, Json<RegisteredAgent>), ApiError> {
    principal.require_new_key(&agent.public_key)?;
    require_allowed_scheme(&state, "endpoint_url", &agent.endpoint_url)?;
    let secret = WebhookSecret::generate();
    let row = store::insert(&state.db, AgentId::generate(), &agent, &secret).await?;
    let agent = Agent::from(row);
    tracing::info!(agent_id = %agent.id, "agent registered");
    Ok((StatusCode::CREATED, Json(RegisteredAgent { agent, webhook_secret: secret.expose().to_owned() })))
}

/// Read an agent, active or not.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "agent id, `agt_…`")),
    responses(
        (status = 200, body = Agent),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_agent(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Agent>, ApiError> {
    let id = parse_id(&id)?;
    let row = store::find(&state.db, id).await?.ok_or_else(|| agent_not_found(id))?;
    Ok(Json(row.into()))
}

/// Change an active agent's name, description, capabilities, endpoint or price.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "agent id, `agt_…`")),
    request_body = UpdateAgent,
    responses(
        (status = 200, body = Agent),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
        (status = 409, description = "the agent is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Signed { principal, body: changes }: Signed<UpdateAgent>,
) -> Result<Json<Agent>, ApiError> {
    let id = parse_id(&id)?;
    principal.require_agent(id)?;
    if let Some(url) = &changes.endpoint_url {
        require_allowed_scheme(&state, "endpoint_url", url)?;
    }
    let UpdateAgent { name, description, capabilities, endpoint_url, price } = &changes;
    if name.is_none() && description.is_none() && capabilities.is_none() && endpoint_url.is_none() && price.is_none() {
        return Err(ApiError::invalid("body", "name at least one field to change"));
    }
    match store::update(&state.db, id, &changes).await? {
        Some(row) => Ok(Json(row.into())),
        None if store::find(&state.db, id).await?.is_some() => {
            Err(ApiError::Conflict(format!("agent {id} is deactivated and can no longer change")))
        }
        None => Err(agent_not_found(id)),
    }
}

/// Deactivate an agent: it leaves discovery and takes no new jobs. Repeating it is harmless.
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "agent id, `agt_…`")),
    responses(
        (status = 204, description = "deactivated"),
        SignedRequestRefusals,
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deactivate_agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    principal.require_agent(id)?;
    if !store::deactivate(&state.db, id).await? {
        return Err(agent_not_found(id));
    }
    tracing::info!(agent_id = %id, "agent deactivated");
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(id: &str) -> Result<AgentId, ApiError> {
    id.parse().map_err(|e| ApiError::invalid("id", e))
}

fn agent_not_found(id: AgentId) -> ApiError {
    ApiError::NotFound(format!("no agent with id {id}"))
}

/// Plain http webhook URLs are a local-development convenience only.
pub fn require_allowed_scheme(state: &AppState, field: &str, url: &EndpointUrl) -> Result<(), ApiError> {
    if url.is_https() || state.settings.allow_http_endpoints {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be an https URL"))
    }
}
