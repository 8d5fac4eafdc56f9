//! Discovery: the hottest read path. Filters by capability tags, text,
//! price, rating and liveness; sorts by reputation score, price or age; pages with an opaque
//! keyset cursor, so page 1,000 costs what page 1 costs.

use std::str::FromStr;

mod keyset;
mod page_json;
mod store;
mod tag_frequencies;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::domain::{CapabilityTag, ParseError, Price, Rating};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, PublicReadRefusals};
use crate::http::extract::ValidQuery;
use crate::http::fragment_cache::FragmentCache;
use crate::http::replica::Pools;
use crate::http::state::AppState;
use crate::resources::agent::PublicAgent;
use keyset::{Cursor, SortOrder};
use store::{Filters, Listed};
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

/// One page of agents. Its JSON is put together from each agent's
/// (`page_json`); this type describes it, and a test holds the two to the
/// same bytes.
#[derive(Debug, Serialize, ToSchema)]
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
    let kept = &state.public_agents;
    let page = state.public_read(|pools| async move { search.page(&pools, tag_frequencies, kept).await });
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

    /// The page's JSON, read from `pools` (the replica's or the primary's)
    /// and `kept` agents.
    async fn page(
        &self,
        pools: &Pools,
        tag_frequencies: &TagFrequencies,
        kept: &FragmentCache,
    ) -> Result<Bytes, ApiError> {
        let mut listed = self.fetch(pools, tag_frequencies).await?;
        let has_more = listed.len() > usize::from(self.limit);
        listed.truncate(usize::from(self.limit));
        let next_cursor = match listed.last() {
            Some(last) if has_more => Some(last.cursor(self.sort).encode()),
            _ => None,
        };
        let agents = page_json::agents(&pools.db, kept, &listed).await?;
        Ok(page_json::page(&agents, next_cursor.as_deref())?)
    }

    /// One row more than the page, to know whether another page follows.
    async fn fetch(&self, pools: &Pools, tag_frequencies: &TagFrequencies) -> sqlx::Result<Vec<Listed>> {
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
        store::fetch(&pools.db, &pools.discovery_db, &filters, self.after, i64::from(self.limit) + 1).await
    }
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use time::OffsetDateTime;

    use super::*;
    use crate::http::page_cache::json_body;
    use crate::resources::agent::AgentRow;

    fn agent(n: u8) -> PublicAgent {
        let at = OffsetDateTime::from_unix_timestamp(1_765_000_000 + i64::from(n)).unwrap();
        PublicAgent::from(AgentRow {
            id: uuid::Uuid::from_u128(u128::from(n)),
            name: format!("agent \"{n}\" \u{e9}"),
            description: "line\nbreak\ttab \\ slash".into(),
            capabilities: vec!["translation".into(), format!("skill-{n}")],
            endpoint_url: format!("https://host-{n}.example/hook?token=secret"),
            public_key: vec![n; 32],
            price: Decimal::new(1250, 2),
            rating: Decimal::new(475, 2),
            rating_count: i32::from(n),
            uncounted_rating_count: 1,
            score: Decimal::new(3_181_818, 6),
            last_seen_at: n.is_multiple_of(2).then_some(at),
            active: true,
            endpoint_disabled_at: None,
            created_at: at,
            updated_at: at,
            version: i64::from(n),
        })
    }

    #[test]
    fn a_page_put_together_is_what_serde_writes_for_it() {
        for (count, next_cursor) in [(0, None), (1, None), (3, Some("c2NvcmV8MTIz_-")), (20, Some("x"))] {
            let agents: Vec<PublicAgent> = (0..count).map(agent).collect();
            let fragments: Vec<Bytes> = agents.iter().map(|agent| json_body(agent, 0).unwrap()).collect();
            let assembled = page_json::page(&fragments, next_cursor).unwrap();
            let expected =
                serde_json::to_vec(&AgentPage { agents, next_cursor: next_cursor.map(str::to_owned) }).unwrap();
            assert_eq!(assembled, expected, "{}", String::from_utf8_lossy(&expected));
        }
    }
}
