//! Discovery: the hottest read path. Filters by capability tags, text,
//! price, rating and liveness; sorts by reputation score, price or age; pages with an opaque
//! keyset cursor, so page 1,000 costs what page 1 costs.

use std::str::FromStr;

mod keyset;
mod store;
mod tag_frequencies;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::Deserialize;
use shared::domain::{CapabilityTag, ParseError, Price, Rating};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, PublicReadRefusals};
use crate::http::extract::ValidQuery;
use crate::http::replica::Pools;
use crate::http::state::AppState;
use crate::resources::agent::PublicAgent;
use keyset::{Cursor, SortOrder};
use store::{Filters, ListedAgent};
use tag_frequencies::TagFrequencies;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(discover_agents)).layer(Extension(TagFrequencies::default()))
}

/// Every `sort`, for the OpenAPI document.
pub(crate) const SORT_ORDERS: [SortOrder; 3] = SortOrder::ALL;

const MAX_QUERY_CHARS: usize = 200;
/// Below a minute, an agent that heartbeats often would still drop out:
/// its `last_seen_at` is written at most once a minute.
const SEEN_WITHIN_SECONDS: std::ops::RangeInclusive<u32> = 60..=2_592_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiscoveryQuery {
    /// Comma-separated tags, at most 32 (422 beyond); an agent must have all of them.
    #[param(value_type = Option<String>, example = "translation,summarization", pattern = "^\\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63}\\s*)?(,\\s*([A-Za-z0-9][A-Za-z0-9._-]{0,63}\\s*)?){0,31}$")]
    capabilities: Option<TagList>,
    /// Words to find in name or description (web-search syntax: `"exact phrase"`, `-exclude`, `or`).
    #[param(value_type = Option<String>, max_length = 200, pattern = "^[^\\x00]*$")]
    q: Option<String>,
    /// Highest price, as a decimal.
    #[param(value_type = Option<String>, example = "20", pattern = "^\\s*(1000000(\\.0{1,6})?|[0-9]{1,6}(\\.[0-9]{1,6})?)\\s*$")]
    max_price: Option<Price>,
    /// Lowest average rating, 0–5.
    #[param(value_type = Option<String>, example = "4.5", pattern = "^\\s*(5(\\.0{1,2})?|[0-4](\\.[0-9]{1,2})?)\\s*$")]
    min_rating: Option<Rating>,
    /// Only agents whose last heartbeat is at most this old, 60–2592000
    /// seconds (heartbeats are recorded at most once a minute).
    #[param(minimum = 60, maximum = 2592000, example = 300)]
    seen_within_seconds: Option<u32>,
    /// `rating` (best reputation score first, the default: see the agent's
    /// `score`), `price` (cheapest first) or `newest`.
    #[param(value_type = Option<String>)]
    sort: Option<SortOrder>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u16>,
    /// `next_cursor` of the previous page, with the same filters and sort.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// One page of agents: its shape, for the OpenAPI document (`page_json`
/// writes it).
#[derive(Debug, ToSchema)]
pub struct AgentPage {
    /// Endpoints show as hosts only.
    pub agents: Vec<PublicAgent>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Search active agents.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "discovery",
    params(DiscoveryQuery),
    responses(
        PublicReadRefusals,
        (status = 200, body = AgentPage),
        )
)]
async fn discover_agents(
    State(state): State<AppState>,
    Extension(tag_frequencies): Extension<TagFrequencies>,
    ValidQuery(query): ValidQuery<DiscoveryQuery>,
) -> Result<Response, ApiError> {
    let search = Search::try_from(query)?;
    let (search, tag_frequencies) = (&search, &tag_frequencies);
    let page = state.public_read(|pools| async move { Ok(search.page(&pools, tag_frequencies).await?) });
    state.public_reads.json_response(search.cache_key(), page).await
}

/// A validated search: every filter parsed, the cursor matching the sort.
struct Search {
    capabilities: Vec<String>,
    text: Option<String>,
    max_price: Option<Decimal>,
    min_rating: Option<Decimal>,
    seen_within_seconds: Option<u32>,
    sort: SortOrder,
    limit: u16,
    after: Cursor,
}

impl TryFrom<DiscoveryQuery> for Search {
    type Error = ApiError;

    fn try_from(query: DiscoveryQuery) -> Result<Self, ApiError> {
        let sort = query.sort.unwrap_or(SortOrder::Rating);
        let limit = crate::http::extract::page_size(query.limit)?;
        let text = query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.contains('\0')) {
            return Err(ApiError::invalid("q", "must not contain NUL characters"));
        }
        if text.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            return Err(ApiError::invalid("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
        }
        if query.seen_within_seconds.is_some_and(|seconds| !SEEN_WITHIN_SECONDS.contains(&seconds)) {
            let range = format!("must be from {} to {}", SEEN_WITHIN_SECONDS.start(), SEEN_WITHIN_SECONDS.end());
            return Err(ApiError::invalid("seen_within_seconds", range));
        }
        let after = match query.cursor {
            Some(cursor) => Cursor::decode(&cursor, sort).map_err(|e| ApiError::invalid("cursor", e))?,
            None => Cursor::first(sort),
        };
        Ok(Self {
            capabilities: query.capabilities.map(|tags| tags.0).unwrap_or_default(),
            text,
            max_price: query.max_price.map(Price::value),
            min_rating: query.min_rating.map(Rating::value),
            seen_within_seconds: query.seen_within_seconds,
            sort,
            limit,
            after,
        })
    }
}

impl Search {
    /// Every parameter that shapes the page, canonical once parsed.
    fn cache_key(&self) -> String {
        let Self { capabilities, text, max_price, min_rating, seen_within_seconds, sort, limit, after } = self;
        let sort = sort.as_str();
        format!(
            "discovery|{capabilities:?}|{text:?}|{max_price:?}|{min_rating:?}|{seen_within_seconds:?}|{sort}|{limit}|{after:?}"
        )
    }

    /// The page's JSON (an [`AgentPage`]), read from `pools` (the replica's
    /// or the primary's).
    async fn page(&self, pools: &Pools, tag_frequencies: &TagFrequencies) -> sqlx::Result<Bytes> {
        let mut agents = self.fetch(pools, tag_frequencies).await?;
        let has_more = agents.len() > usize::from(self.limit);
        agents.truncate(usize::from(self.limit));
        let next_cursor = match agents.last() {
            Some(last) if has_more => Some(last.resume_after.encode()),
            _ => None,
        };
        Ok(page_json(&agents, next_cursor.as_deref()))
    }

    /// One row more than the page, to know whether another page follows.
    async fn fetch(&self, pools: &Pools, tag_frequencies: &TagFrequencies) -> sqlx::Result<Vec<ListedAgent>> {
        let walk = match self.capabilities.as_slice() {
            [] => None,
            tags => Some((tags, tag_frequencies.rarest(&pools.db, tags).await)),
        };
        let seen_since = self
            .seen_within_seconds
            .map(|seconds| time::OffsetDateTime::now_utc() - time::Duration::seconds(i64::from(seconds)));
        let filters = Filters {
            tags: walk,
            text: self.text.as_deref(),
            max_price: self.max_price,
            min_rating: self.min_rating,
            seen_since,
        };
        store::fetch(&pools.db, &pools.generic_db, &filters, self.after, i64::from(self.limit) + 1).await
    }
}

const PAGE_START: &[u8] = br#"{"agents":["#;
const CURSOR_KEY: &[u8] = br#"],"next_cursor":"#;

/// An [`AgentPage`] in JSON, put together from each agent's JSON as
/// Postgres keeps it: no agent is decoded or written here.
fn page_json(agents: &[ListedAgent], next_cursor: Option<&str>) -> Bytes {
    let agents_bytes: usize = agents.iter().map(|agent| agent.public_json.len() + 1).sum();
    let cursor_bytes = next_cursor.map_or("null".len(), |cursor| cursor.len() + 2);
    let mut body = Vec::with_capacity(PAGE_START.len() + agents_bytes + CURSOR_KEY.len() + cursor_bytes + 1);
    body.extend_from_slice(PAGE_START);
    for (n, agent) in agents.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(agent.public_json.as_bytes());
    }
    body.extend_from_slice(CURSOR_KEY);
    match next_cursor {
        // A cursor is URL-safe base64: nothing in it needs escaping.
        Some(cursor) => {
            body.push(b'"');
            body.extend_from_slice(cursor.as_bytes());
            body.push(b'"');
        }
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Bytes::from(body)
}

/// At most this many comma-separated entries in `capabilities`: each tag
/// is another index walk or filter, so the number bounds a search's cost.
const MAX_SEARCH_TAGS: usize = 32;

/// `capabilities=a,b,c`.
#[derive(Debug)]
struct TagList(Vec<String>);

impl<'de> Deserialize<'de> for TagList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // Entries, empty ones included, as the documented pattern counts them.
        if raw.split(',').count() > MAX_SEARCH_TAGS {
            return Err(serde::de::Error::custom(format!("at most {MAX_SEARCH_TAGS} comma-separated tags")));
        }
        let tags = raw
            .split(',')
            .filter(|tag| !tag.trim().is_empty())
            .map(|tag| CapabilityTag::from_str(tag).map(CapabilityTag::into_string))
            .collect::<Result<Vec<_>, ParseError>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Self(tags))
    }
}
