//! Job receipts: when a job completes or fails, the platform signs its
//! receipt (compact JWS with the platform key, see
//! [`crate::http::platform_keys`]) in the same transaction as the move, in
//! two forms (`forms`): the full one, for the job's two parties, names the
//! client (and, once rated, the rating: rating signs it again), and the
//! public one, signed once and never changed, states the job with a salted
//! commitment to its client instead, so an agent's track record names none
//! of its clients and none of their ratings. Receipts are stored as signed,
//! so each verifies offline against `/.well-known/jwks.json` as long as the
//! key that signed it is published (the previous key stays there through a
//! rotation). A job's parties read both; anyone pages through an agent's
//! public receipts.

mod forms;
pub mod legacy;
pub mod model;
mod store;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::domain::{AgentId, JobId};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::auth::{Authenticated, Signer};
use crate::http::error::{ApiError, Problem, PublicReadRefusals, SignedRequestRefusals};
use crate::http::extract::{PageQuery, ValidQuery};
use crate::http::path_id::PathId;
use crate::http::platform_keys::PlatformKeys;
use crate::http::state::AppState;
use crate::resources::{job, paging};
pub use model::FinishedJob;
use model::{FullReceipt, JobReceipt, ReceiptFacts, ReceiptPage};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_receipt)).routes(routes!(list_receipts))
}

/// Signs and stores both receipts of a job that has just finished, in the
/// transaction that finished it.
pub async fn issue(tx: &mut PgConnection, keys: &PlatformKeys, job: FinishedJob<'_>) -> Result<(), ApiError> {
    let result_sha256 = job.result.map(result_sha256).transpose()?;
    let facts = serde_json::to_value(ReceiptFacts { job: &job, result_sha256 }).map_err(anyhow::Error::from)?;
    let signed = forms::sign(keys, object(facts)?, forms::Salt::random())?;
    store::insert(tx, job.id, job.agent_id, job.finished_at, &signed).await?;
    Ok(())
}

/// Signs the job's full receipt again with the client's score, in the
/// rating's transaction; the public receipt stays as it was signed at the
/// finish, so it shows neither the score nor when it was given. A job
/// finished before receipts existed has none to sign.
pub async fn add_rating(tx: &mut PgConnection, keys: &PlatformKeys, job: JobId, score: i16) -> Result<(), ApiError> {
    let Some(jws) = store::lock(tx, job).await? else {
        return Ok(());
    };
    let mut claims = payload(&jws)?;
    claims.insert("rating".into(), score.into());
    claims.insert("iat".into(), OffsetDateTime::now_utc().unix_timestamp().into());
    store::replace(tx, job, &keys.sign_claims(&claims)?).await?;
    Ok(())
}

/// The claims of a receipt this API signed and stored.
fn payload(jws: &str) -> anyhow::Result<Map<String, Value>> {
    let encoded = jws.split('.').nth(1).ok_or_else(|| anyhow::anyhow!("a stored receipt is not a compact JWS"))?;
    object(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded)?)?)
}

/// Claims are a JSON object.
fn object(claims: Value) -> anyhow::Result<Map<String, Value>> {
    match claims {
        Value::Object(claims) => Ok(claims),
        _ => anyhow::bail!("a receipt's claims are not a JSON object"),
    }
}

/// Hex SHA-256 of `result` in RFC 8785 canonical form, so any verifier
/// can recompute it from the result, whatever its JSON serialiser.
pub fn result_sha256(result: &serde_json::Value) -> anyhow::Result<String> {
    let canonical = serde_json_canonicalizer::to_vec(result)?;
    Ok(format!("{:x}", Sha256::digest(canonical)))
}

/// The full receipt of a completed or failed job, and its public receipt
/// (signed by its client or its agent).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/receipt",
    tag = "identity",
    params(PathId<JobId>),
    responses(
        (status = 200, body = FullReceipt),
        (status = 404, description = "no such job, or not yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the job has no receipt: it has not completed or failed (or finished before receipts existed)", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
    )
)]
async fn get_receipt(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Authenticated(Signer { principal, .. }): Authenticated,
) -> Result<Json<FullReceipt>, ApiError> {
    let found = store::find(&state.db, id).await?.filter(|job| principal.is_party(job.agent_id, job.client_id));
    let job = found.ok_or_else(|| job::not_found(id))?;
    let Some(mut receipt) = job.receipt else {
        return Err(ApiError::Conflict(format!(
            "job {id} is {} and has no receipt; a receipt is issued when a job completes or fails",
            job.status
        )));
    };
    if receipt.public_jws.is_none() {
        // Issued by an older revision: made private now, not at the next maintenance round.
        legacy::sign_and_store(&state.db, &state.platform_keys, vec![(id.as_uuid(), receipt.full.jws)]).await?;
        receipt = store::find(&state.db, id).await?.and_then(|job| job.receipt).ok_or_else(|| job::not_found(id))?;
    }
    let Some(public_receipt) = receipt.public_jws else {
        return Err(ApiError::Unavailable(format!("the receipt of job {id} changed while it was made private; retry")));
    };
    let full = receipt.full;
    Ok(Json(FullReceipt {
        job_id: id,
        agent_id: AgentId::from_uuid(full.agent_id),
        finished_at: full.finished_at,
        issued_at: full.issued_at,
        receipt: full.jws,
        public_receipt,
    }))
}

/// An agent's public job receipts, the most recently finished job first
/// (public): its track record, each receipt verifiable offline against
/// `/.well-known/jwks.json`, naming neither the client nor the rating.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/receipts",
    tag = "identity",
    params(PathId<AgentId>, PageQuery),
    responses(
        PublicReadRefusals,
        (status = 200, body = ReceiptPage),
        (status = 404, description = "no such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_receipts(
    State(state): State<AppState>,
    PathId(id): PathId<AgentId>,
    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<ReceiptPage>, ApiError> {
    let query = &query;
    let (rows, next_cursor) = state
        .public_read(|pools| async move {
            let list = |agent, before, limit| store::list(&pools.db, agent, before, limit);
            paging::agent_records(&pools.db, id, query, "receipts", list, |row| (row.finished_at, row.job_id)).await
        })
        .await?;
    Ok(Json(ReceiptPage { receipts: rows.into_iter().map(JobReceipt::from).collect(), next_cursor }))
}
