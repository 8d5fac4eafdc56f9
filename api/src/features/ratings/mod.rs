//! Ratings: a job's client rates the finished job, once. In the same
//! transaction the agent's standing is computed again from its ratings, the
//! job's receipt is signed again with the score, and a `job.rated` event and
//! a webhook to the agent are written. A rating counts toward the standing
//! only for a job of at least `RATING_MIN_PRICE` between independent parties,
//! and each client counts once per agent, weighted by its age and paid
//! counterparties (docs/API.md, "Reputation"). Anyone may page through an
//! agent's ratings, each with whether it counts, why not, and its weight
//! (without the raters' ids).

pub mod model;
mod store;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use shared::domain::{AgentId, JobId, JobStatus};
use shared::events::{self, Aggregate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::features::receipts;
use crate::http::auth::Signed;
use crate::http::error::{ApiError, BodyRefusals, Problem, PublicReadRefusals, SignedRequestRefusals};
use crate::http::extract::{PageQuery, ValidQuery};
use crate::http::path_id::PathId;
use crate::http::principal::Principal;
use crate::http::state::AppState;
use crate::outbox;
use crate::resources::{agent, job, paging};
use model::{JobRated, JobRating, RateJob, RatingPage};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rate_job)).routes(routes!(list_ratings))
}

/// Rate a completed or failed job, once (signed by the job's client). The
/// agent's standing is computed again (a rating of a job below
/// `RATING_MIN_PRICE`, or between related parties, is kept but does not
/// count: the answer says why), and the agent gets a `job.rated` webhook.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/rating",
    tag = "ratings",
    request_body = RateJob,
    params(PathId<JobId>),
    responses(
        (status = 201, description = "rated", body = JobRating),
        SignedRequestRefusals, BodyRefusals,
        (status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the job is not completed or failed, or is already rated", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn rate_job(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Signed { signer, body }: Signed<RateJob>,
) -> Result<(StatusCode, Json<JobRating>), ApiError> {
    let Principal::Client(client) = signer.principal else {
        return Err(ApiError::Forbidden("only the job's client may rate it; sign with your cli_… keyid".into()));
    };
    let mut tx = signer.begin_write(&state.db).await?;
    let Some(agent_id) = store::insert(&mut tx, id, client, &body).await? else {
        drop(tx); // Before reading on another connection.
        return Err(why_not_rated(&state, id, &signer.principal).await);
    };
    let agent = store::rescore_agent(&mut tx, agent_id).await?;
    let rating = JobRating::from(store::find(&mut tx, id).await?);
    receipts::add_rating(&mut tx, &state.platform_keys, id, rating.score).await?;
    let rated = JobRated { rating: &rating, client_id: client, agent };
    let event = events::record(&mut tx, Aggregate::Job(id), events::JOB_RATED, &rated).await?;
    outbox::deliver_to_agent(&mut tx, event, id, rating.agent_id).await?;
    tx.commit().await?;
    agent::changed(&state, rating.agent_id);
    tracing::info!(job_id = %id, agent_id = %rating.agent_id, score = rating.score, counted = rating.counted, "job rated");
    Ok((StatusCode::CREATED, Json(rating)))
}

/// The refusal for a rating that was not written: the job is not the
/// caller's (404), not finished, or already rated (409).
async fn why_not_rated(state: &AppState, id: JobId, principal: &Principal) -> ApiError {
    match job::find_for_party(state, id, principal).await {
        Ok(job) if matches!(job.status, JobStatus::Completed | JobStatus::Failed) => {
            ApiError::Conflict(format!("job {id} is already rated; a job is rated once"))
        }
        Ok(job) => {
            ApiError::Conflict(format!("job {id} is {}; only a completed or failed job can be rated", job.status))
        }
        Err(refusal) => refusal,
    }
}

/// An agent's ratings, newest first (public), each with whether it counts
/// toward the score, why not, and its weight; never who gave it.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/ratings",
    tag = "ratings",
    params(PathId<AgentId>, PageQuery),
    responses(
        PublicReadRefusals,
        (status = 200, body = RatingPage),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
        )
)]
async fn list_ratings(
    State(state): State<AppState>,
    PathId(id): PathId<AgentId>,
    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<RatingPage>, ApiError> {
    let query = &query;
    let (rows, next_cursor) = state
        .public_read(|pools| async move {
            let list = |agent, before, limit| store::list(&pools.db, agent, before, limit);
            paging::agent_records(&pools.db, id, query, "ratings", list, |row| (row.created_at, row.job_id)).await
        })
        .await?;
    Ok(Json(RatingPage { ratings: rows.into_iter().map(JobRating::from).collect(), next_cursor }))
}
