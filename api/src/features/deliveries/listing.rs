//! Listings: a job's deliveries (a plain array: a job has a few), and an
//! agent's or a client's, newest first in pages with keyset cursors on
//! `(created_at, id)`, filtered by status, event type and creation time.
//! Each delivery carries its newest attempts and how many it has in all, so
//! a long-retried delivery stays a small answer.
//!
//! A listing is three statements: the page's delivery ids (one per kind of
//! recipient, walking its index by status), then the deliveries and their newest
//! attempts for those ids (shared by every listing).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, ClientId, DeliveryId, DeliveryStatus, EventId, JobId, Outcome};
use shared::redrive::Recipient;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{RecipientId, recipient_of, require_recipient};
use crate::http::auth::{Authenticated, Signer};
use crate::http::cursor;
use crate::http::error::{ApiError, Problem, SignedRequestRefusals};
use crate::http::extract::ValidQuery;
use crate::http::path_id::PathId;
use crate::http::state::AppState;
use crate::resources::job;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(job_deliveries))
        .routes(routes!(agent_deliveries))
        .routes(routes!(client_deliveries))
}

/// How many attempts a listed delivery shows: its newest.
const LISTED_ATTEMPTS: i64 = 20;
const CURSOR_KIND: &str = "deliveries";

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
    pub status: DeliveryStatus,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The current round of sending: 0, then one more per resend or recover
    /// (and when a lost task is replaced, which keeps the attempt count).
    pub generation: i32,
    /// How many times the recipient has resent it (at most 20).
    pub resends: i32,
    /// When the next attempt is scheduled, while the delivery is `pending` or
    /// `dispatched`; `null` otherwise, or when none is scheduled yet.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// How many attempts it has had in all (kept for a retention period).
    pub attempt_count: i64,
    /// Its newest 20 attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    /// 1-based: a resend or recover starts from 1 again.
    pub attempt: i32,
    /// The round it belonged to (see the delivery's `generation`).
    pub generation: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    pub latency_ms: i32,
    pub response_status: Option<i32>,
    /// The first 4 KB of the answer.
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// `delivered`, `retry`, `dead`, `gone` (410: endpoint disabled) or `refused` (not a public address).
    #[schema(value_type = String)]
    pub outcome: Outcome,
}

/// One page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// Only deliveries of this event type, e.g. `job.created`.
    #[param(value_type = Option<String>, example = "job.created", max_length = 64, pattern = "^[a-z_]+\\.[a-z_]+$")]
    event_type: Option<EventTypeName>,
    /// Only deliveries created at or after this RFC 3339 time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Only deliveries created before this RFC 3339 time; later than
    /// `since` when both are given (else 422).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u16>,
    /// `next_cursor` of the previous page, with the same filters.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// An event type's name, `<aggregate>.<what happened>`, e.g. `job.created`.
#[derive(Debug)]
struct EventTypeName(String);

impl<'de> Deserialize<'de> for EventTypeName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let word = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        match name.split_once('.') {
            Some((aggregate, what)) if name.len() <= 64 && word(aggregate) && word(what) => Ok(Self(name)),
            _ => Err(serde::de::Error::custom("must be an event type such as job.created")),
        }
    }
}

/// A validated query: where the page starts, and what it keeps.
struct Filter {
    status: Option<DeliveryStatus>,
    event_type: Option<String>,
    since: OffsetDateTime,
    /// Strictly before this `(created_at, id)`: the cursor's position or `until`, whichever is earlier.
    before: (OffsetDateTime, Uuid),
    limit: u16,
}

impl TryFrom<DeliveryQuery> for Filter {
    type Error = ApiError;

    fn try_from(query: DeliveryQuery) -> Result<Self, ApiError> {
        let limit = crate::http::extract::page_size(query.limit)?;
        if let (Some(since), Some(until)) = (query.since, query.until)
            && until <= since
        {
            return Err(ApiError::invalid("until", "must be later than since"));
        }
        let after_cursor = cursor::newest_first_after(query.cursor.as_deref(), CURSOR_KIND)
            .map_err(|e| ApiError::invalid("cursor", e))?;
        // Nothing sorts before the nil id, so (until, nil) excludes `until` itself.
        let before = query.until.map_or(after_cursor, |until| after_cursor.min((until, Uuid::nil())));
        Ok(Self {
            status: query.status,
            event_type: query.event_type.map(|name| name.0),
            since: query.since.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            before,
            limit,
        })
    }
}

/// The deliveries of one job (signed by its client or agent).
#[utoipa::path(get, path = "/v1/jobs/{id}/deliveries", tag = "deliveries",
    params(PathId<JobId>),
    responses((status = 200, body = Vec<Delivery>), (status = 404, description = "no such job of yours", body = Problem, content_type = "application/problem+json"), SignedRequestRefusals))]
async fn job_deliveries(
    State(state): State<AppState>,
    PathId(id): PathId<JobId>,
    Authenticated(Signer { principal, .. }): Authenticated,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    job::find_for_party(&state, id, &principal).await?;
    let (agent, client) = recipient_of(&principal).map_or((None, None), Recipient::columns);
    // Each party sees its own deliveries: the other's answers are not its business.
    let ids = sqlx::query_scalar!(
        "SELECT d.id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.job_id = $1 AND (d.agent_id = $2 OR d.client_id = $3) ORDER BY e.position",
        id.as_uuid(),
        agent,
        client
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(describe(&state.db, &ids).await?))
}

/// The deliveries to an agent's endpoint, newest first (signed by the agent).
#[utoipa::path(get, path = "/v1/agents/{id}/deliveries", tag = "deliveries",
    params(PathId<AgentId>, DeliveryQuery),
    responses((status = 404, description = "no such agent, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = DeliveryPage), SignedRequestRefusals))]
async fn agent_deliveries(
    state: State<AppState>,
    id: PathId<AgentId>,
    query: ValidQuery<DeliveryQuery>,
    signed: Authenticated,
) -> Result<Json<DeliveryPage>, ApiError> {
    recipient_deliveries(state, id, query, signed).await
}

/// The callbacks of a client's jobs, newest first (signed by the client).
#[utoipa::path(get, path = "/v1/clients/{id}/deliveries", tag = "deliveries",
    params(PathId<ClientId>, DeliveryQuery),
    responses((status = 404, description = "no such client, or not yours", body = Problem, content_type = "application/problem+json"), (status = 200, body = DeliveryPage), SignedRequestRefusals))]
async fn client_deliveries(
    state: State<AppState>,
    id: PathId<ClientId>,
    query: ValidQuery<DeliveryQuery>,
    signed: Authenticated,
) -> Result<Json<DeliveryPage>, ApiError> {
    recipient_deliveries(state, id, query, signed).await
}

/// Both recipients' listing: only the recipient's own key reads it.
async fn recipient_deliveries<R: RecipientId>(
    State(state): State<AppState>,
    PathId(id): PathId<R>,
    ValidQuery(query): ValidQuery<DeliveryQuery>,
    Authenticated(Signer { principal, .. }): Authenticated,
) -> Result<Json<DeliveryPage>, ApiError> {
    let recipient = id.recipient();
    require_recipient(&principal, recipient)?;
    let filter = Filter::try_from(query)?;
    let mut ids = page_ids(&state.db, recipient, &filter).await?;
    let has_more = ids.len() > usize::from(filter.limit);
    ids.truncate(usize::from(filter.limit));
    let deliveries = describe(&state.db, &ids).await?;
    let next_cursor = match deliveries.last() {
        Some(last) if has_more => {
            Some(cursor::encode(CURSOR_KIND, &cursor::time_key(last.created_at), last.id.as_uuid()))
        }
        _ => None,
    };
    Ok(Json(DeliveryPage { deliveries, next_cursor }))
}

/// The ids of one page, and one more to tell whether another page follows.
/// One statement per kind of recipient. Each walks its `by_*_status` index
/// newest first once per status it keeps (all four without a filter), up to
/// a page each, and keeps the newest of those: at most four pages' rows are
/// read. No index by recipient alone is kept for this listing: each
/// delivery's insert and two updates would write it (the migration
/// `deliveries_listed_by_status`).
async fn page_ids(db: &PgPool, recipient: Recipient, filter: &Filter) -> sqlx::Result<Vec<Uuid>> {
    let Filter { status, event_type, since, before, limit } = filter;
    let statuses = status.map_or(DeliveryStatus::ALL.to_vec(), |status| vec![status]);
    let (statuses, event_type, fetch) = (&statuses[..], event_type.as_deref(), i64::from(*limit) + 1);
    // The statement with the recipient's column (a literal: the SQL is checked at compile time).
    macro_rules! page_ids_where {
        ($column:tt, $recipient:expr) => {
            sqlx::query_scalar!(
                r#"SELECT listed.id AS "id!" FROM unnest($5::text[]) AS wanted (status) CROSS JOIN LATERAL (
                       SELECT d.id, d.created_at FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
                       WHERE d."#
                    + $column
                    + r#" = $1 AND d.status = wanted.status AND d.created_at >= $2
                         AND (d.created_at, d.id) < ($3, $4) AND ($6::text IS NULL OR e.type = $6)
                       ORDER BY d.created_at DESC, d.id DESC LIMIT $7) listed
                   ORDER BY listed.created_at DESC, listed.id DESC LIMIT $7"#,
                $recipient,
                since,
                before.0,
                before.1,
                statuses as &[DeliveryStatus],
                event_type,
                fetch
            )
            .fetch_all(db)
            .await
        };
    }
    match recipient {
        Recipient::Agent(agent) => page_ids_where!("agent_id", agent.as_uuid()),
        Recipient::Client(client) => page_ids_where!("client_id", client.as_uuid()),
    }
}

/// The deliveries with these ids, in this order, each with its newest
/// attempts (a LATERAL subquery with a LIMIT per delivery) and their total.
async fn describe(db: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<Delivery>> {
    let rows = sqlx::query!(
        r#"SELECT d.id, d.event_id, e.type AS event_type, d.job_id, d.target_url, d.status AS "status: DeliveryStatus",
                  d.last_error, d.created_at,
                  d.generation, d.resends,
                  CASE WHEN d.status IN ('pending', 'dispatched') THEN d.next_attempt_at END AS next_attempt_at,
                  (SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id) AS "attempt_count!"
           FROM unnest($1::uuid[]) WITH ORDINALITY AS listed (id, position)
           JOIN webhook_deliveries d ON d.id = listed.id JOIN events e ON e.id = d.event_id
           ORDER BY listed.position"#,
        ids
    )
    .fetch_all(db)
    .await?;
    let mut attempts: HashMap<Uuid, Vec<Attempt>> = HashMap::new();
    for attempt in sqlx::query!(
        r#"SELECT newest.delivery_id AS "delivery_id!", newest.attempt AS "attempt!", newest.generation AS "generation!",
                  newest.started_at AS "started_at!", newest.latency_ms AS "latency_ms!", newest.response_status,
                  newest.response_body, newest.error, newest.outcome AS "outcome!: Outcome"
           FROM unnest($1::uuid[]) AS listed (id)
           CROSS JOIN LATERAL (SELECT * FROM delivery_attempts a WHERE a.delivery_id = listed.id
                               ORDER BY a.id DESC LIMIT $2) newest
           ORDER BY newest.id"#,
        ids,
        LISTED_ATTEMPTS
    )
    .fetch_all(db)
    .await?
    {
        attempts.entry(attempt.delivery_id).or_default().push(Attempt {
            attempt: attempt.attempt,
            generation: attempt.generation,
            started_at: attempt.started_at,
            latency_ms: attempt.latency_ms,
            response_status: attempt.response_status,
            response_body: attempt.response_body,
            error: attempt.error,
            outcome: attempt.outcome,
        });
    }
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
            generation: row.generation,
            resends: row.resends,
            next_attempt_at: row.next_attempt_at,
            attempt_count: row.attempt_count,
            attempts: attempts.remove(&row.id).unwrap_or_default(),
        })
        .collect())
}
