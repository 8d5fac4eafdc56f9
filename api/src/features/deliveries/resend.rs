//! Resend: the recipient sends one delivered or dead delivery again, as a
//! new round, at most once a minute; every new round (resends and
//! recoveries together) counts toward 20 per delivery. A delivery the egress
//! policy refused is not resent to the same URL. The caps are checked by the
//! statement that starts the round; when it starts nothing, a read says why.

use axum::extract::State;
use axum::http::StatusCode;
use shared::domain::{DeliveryId, DeliveryStatus, Outcome};
use shared::redrive::{self, MAX_ROUNDS, RESEND_INTERVAL_SECONDS, Recipient, Restart};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::recipient_of;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, Problem, SignedRequestRefusals};
use crate::http::path_id::PathId;
use crate::http::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(resend_delivery))
}

/// Send a delivered or dead delivery again, with a fresh round of attempts
/// (signed by its recipient: the agent for its endpoint, the client for its
/// callbacks). At most once a minute, and at most 20 new rounds per delivery
/// (resends and recoveries together); not while it would go to the URL the
/// egress policy refused.
#[utoipa::path(post, path = "/v1/deliveries/{id}/resend", tag = "deliveries",
    params(PathId<DeliveryId>),
    responses(
        (status = 202, description = "queued again"),
        (status = 404, description = "no such delivery of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "still being sent, the agent's endpoint is disabled, or the egress policy refused its URL (an agent changes its endpoint first)", body = Problem, content_type = "application/problem+json"),
        SignedRequestRefusals,
        (status = 429, description = "`too-soon`: resent less than a minute ago (see `Retry-After`); `limit-reached`: started over 20 times already (resends and recoveries); `rate-limited`: too many writes from this key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn resend_delivery(
    State(state): State<AppState>,
    PathId(id): PathId<DeliveryId>,
    Authenticated(signer): Authenticated,
) -> Result<StatusCode, ApiError> {
    let Some(recipient) = recipient_of(&signer.principal) else {
        return Err(not_yours(id));
    };
    // The new round joins this request's trace.
    let traceparent = shared::telemetry::current_traceparent();
    let mut tx = signer.begin_write(&state.db).await?;
    let started =
        redrive::start_new_round(&mut *tx, recipient, &[id.as_uuid()], Restart::Resend, traceparent.as_deref()).await?;
    tx.commit().await?;
    if started == 0 {
        return Err(why_not_resent(&state, id, recipient).await?);
    }
    state.outbox.committed();
    Ok(StatusCode::ACCEPTED)
}

/// Why the delivery did not start over, read after the fact: the caps first
/// (a client waits for them whatever the state), then the state.
async fn why_not_resent(state: &AppState, id: DeliveryId, recipient: Recipient) -> Result<ApiError, ApiError> {
    let (agent, client) = recipient.columns();
    let Some(row) = sqlx::query!(
        r#"SELECT d.status AS "status: DeliveryStatus", d.resends, d.last_outcome AS "last_outcome: Outcome",
                  COALESCE(d.target_url = a.endpoint_url, false) AS "to_current_endpoint!",
                  ceil(extract(epoch FROM d.resent_at + make_interval(secs => $4::bigint) - now()))::bigint AS wait_seconds,
                  COALESCE(a.endpoint_disabled_at IS NOT NULL, false) AS "endpoint_disabled!"
           FROM webhook_deliveries d LEFT JOIN agents a ON a.id = d.agent_id
           WHERE d.id = $1 AND (d.agent_id = $2 OR d.client_id = $3)"#,
        id.as_uuid(),
        agent,
        client,
        RESEND_INTERVAL_SECONDS,
    )
    .fetch_optional(&state.db)
    .await?
    else {
        return Ok(not_yours(id));
    };
    let wait_seconds = row.wait_seconds.and_then(|wait| u64::try_from(wait).ok()).filter(|wait| *wait > 0);
    Ok(match (row.resends >= MAX_ROUNDS, wait_seconds, row.status) {
        (true, _, _) => ApiError::LimitReached(format!(
            "delivery {id} has been started over {MAX_ROUNDS} times (resends and recoveries), the most allowed; it cannot be resent again"
        )),
        (false, Some(wait), _) => ApiError::TooSoon {
            message: format!("delivery {id} was resent less than a minute ago; resend it again in {wait} s"),
            retry_after_seconds: wait,
        },
        (false, None, DeliveryStatus::Pending | DeliveryStatus::Dispatched) => ApiError::Conflict(format!(
            "delivery {id} is {}: it is still being sent; resend it once it is delivered or dead",
            row.status
        )),
        (false, None, _) if row.endpoint_disabled => ApiError::Conflict(format!(
            "delivery {id} goes to your disabled endpoint: enable it (POST /v1/agents/<your id>/endpoint/enable), then resend"
        )),
        (false, None, _) if row.last_outcome == Some(Outcome::Refused) && row.to_current_endpoint => {
            ApiError::Conflict(format!(
                "delivery {id} died because the egress policy refused your endpoint's address (not a public address); change endpoint_url, then resend"
            ))
        }
        (false, None, _) if row.last_outcome == Some(Outcome::Refused) && recipient.is_client() => {
            ApiError::Conflict(format!(
                "delivery {id} died because the egress policy refused the job's callback_url (not a public address); it cannot be resent"
            ))
        }
        // It changed between the two statements (e.g. it had just died).
        (false, None, _) => ApiError::Conflict(format!("delivery {id} changed while being resent; try again")),
    })
}

fn not_yours(id: DeliveryId) -> ApiError {
    ApiError::NotFound(format!("no delivery {id} of yours"))
}
