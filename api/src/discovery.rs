//! Discovery: the hottest read path. Filters by capability tags, text,
//! price and rating; sorts by rating, price or age; pages with an opaque
//! keyset cursor, so page 1,000 costs what page 1 costs.

use std::str::FromStr;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::domain::{CapabilityTag, ParseError, Price, Rating};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::agents::model::{Agent, AgentRow};
use crate::cursor;
use crate::error::{ApiError, Problem};
use crate::extract::ValidQuery;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(discover_agents))
}

const DEFAULT_PAGE_SIZE: u16 = 20;
const MAX_PAGE_SIZE: u16 = 100;
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiscoveryQuery {
    /// Comma-separated tags; an agent must have all of them.
    #[param(value_type = Option<String>, example = "translation,summarization")]
    capabilities: Option<TagList>,
    /// Words to find in name or description (web-search syntax: `"exact phrase"`, `-exclude`, `or`).
    #[param(value_type = Option<String>)]
    q: Option<String>,
    /// Highest price, as a decimal.
    #[param(value_type = Option<String>, example = "20")]
    max_price: Option<Price>,
    /// Lowest average rating, 0–5.
    #[param(value_type = Option<String>, example = "4.5")]
    min_rating: Option<Rating>,
    /// `rating` (best first, the default), `price` (cheapest first) or `newest`.
    #[param(value_type = Option<String>)]
    sort: Option<SortOrder>,
    /// Page size, 1–100 (default 20).
    limit: Option<u16>,
    /// `next_cursor` of the previous page, with the same filters and sort.
    cursor: Option<String>,
}

/// One page of agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentPage {
    pub agents: Vec<Agent>,
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
        (status = 200, body = AgentPage),
        (status = 422, description = "a parameter was refused", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn discover_agents(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<DiscoveryQuery>,
) -> Result<Response, ApiError> {
    let search = Search::try_from(query)?;
    let key = search.cache_key();
    let page = match state.public_reads.get(&key) {
        Some(page) => page,
        None => {
            let page = Bytes::from(serde_json::to_vec(&search.page(&state.db).await?).map_err(anyhow::Error::from)?);
            state.public_reads.put(key, page.clone());
            page
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], page).into_response())
}

/// A validated search: every filter parsed, the cursor matching the sort.
struct Search {
    capabilities: Vec<String>,
    text: Option<String>,
    max_price: Option<Decimal>,
    min_rating: Option<Decimal>,
    sort: SortOrder,
    limit: u16,
    after: Cursor,
}

impl TryFrom<DiscoveryQuery> for Search {
    type Error = ApiError;

    fn try_from(query: DiscoveryQuery) -> Result<Self, ApiError> {
        let sort = query.sort.unwrap_or(SortOrder::Rating);
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be from 1 to {MAX_PAGE_SIZE}")));
        }
        let text = query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            return Err(ApiError::invalid("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
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
            sort,
            limit,
            after,
        })
    }
}

impl Search {
    /// Every parameter that shapes the page, canonical once parsed.
    fn cache_key(&self) -> String {
        let Self { capabilities, text, max_price, min_rating, sort, limit, after } = self;
        format!("discovery|{capabilities:?}|{text:?}|{max_price:?}|{min_rating:?}|{}|{limit}|{after:?}", sort.as_str())
    }

    async fn page(&self, db: &PgPool) -> sqlx::Result<AgentPage> {
        let mut rows = self.fetch(db).await?;
        let has_more = rows.len() > usize::from(self.limit);
        rows.truncate(usize::from(self.limit));
        let next_cursor = match rows.last() {
            Some(last) if has_more => Some(Cursor::after(self.sort, last).encode()),
            _ => None,
        };
        Ok(AgentPage { agents: rows.into_iter().map(Agent::from).collect(), next_cursor })
    }

    /// One row more than the page, to know whether another page follows.
    async fn fetch(&self, db: &PgPool) -> sqlx::Result<Vec<AgentRow>> {
        let (caps, text, max_price, min_rating) = (&self.capabilities, &self.text, self.max_price, self.min_rating);
        let fetch = i64::from(self.limit) + 1;
        // One statement per sort order: each walks its own index in order.
        match self.after {
            Cursor::Rating(rating, id) => sqlx::query_as!(AgentRow,
                "SELECT id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, endpoint_disabled_at, created_at, updated_at FROM agents
                 WHERE active AND capabilities @> $1 AND ($2::text IS NULL OR search @@ websearch_to_tsquery('english', $2)) AND ($3::numeric IS NULL OR price <= $3) AND ($4::numeric IS NULL OR rating >= $4)
                 AND (rating, id) < ($5, $6) ORDER BY rating DESC, id DESC LIMIT $7",
                caps, text.as_deref(), max_price, min_rating, rating, id, fetch).fetch_all(db).await,
            Cursor::Price(price, id) => sqlx::query_as!(AgentRow,
                "SELECT id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, endpoint_disabled_at, created_at, updated_at FROM agents
                 WHERE active AND capabilities @> $1 AND ($2::text IS NULL OR search @@ websearch_to_tsquery('english', $2)) AND ($3::numeric IS NULL OR price <= $3) AND ($4::numeric IS NULL OR rating >= $4)
                 AND (price, id) > ($5, $6) ORDER BY price, id LIMIT $7",
                caps, text.as_deref(), max_price, min_rating, price, id, fetch).fetch_all(db).await,
            Cursor::Newest(created_at, id) => sqlx::query_as!(AgentRow,
                "SELECT id, name, description, capabilities, endpoint_url, public_key, price, rating, rating_count, active, endpoint_disabled_at, created_at, updated_at FROM agents
                 WHERE active AND capabilities @> $1 AND ($2::text IS NULL OR search @@ websearch_to_tsquery('english', $2)) AND ($3::numeric IS NULL OR price <= $3) AND ($4::numeric IS NULL OR rating >= $4)
                 AND (created_at, id) < ($5, $6) ORDER BY created_at DESC, id DESC LIMIT $7",
                caps, text.as_deref(), max_price, min_rating, created_at, id, fetch).fetch_all(db).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortOrder {
    Rating,
    Price,
    Newest,
}

impl SortOrder {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rating => "rating",
            Self::Price => "price",
            Self::Newest => "newest",
        }
    }
}

impl<'de> Deserialize<'de> for SortOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "rating" => Ok(Self::Rating),
            "price" => Ok(Self::Price),
            "newest" => Ok(Self::Newest),
            other => Err(serde::de::Error::custom(format!("must be rating, price or newest, got {other:?}"))),
        }
    }
}

/// `capabilities=a,b,c`.
#[derive(Debug)]
struct TagList(Vec<String>);

impl<'de> Deserialize<'de> for TagList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let tags = raw
            .split(',')
            .filter(|tag| !tag.trim().is_empty())
            .map(|tag| CapabilityTag::from_str(tag).map(CapabilityTag::into_string))
            .collect::<Result<Vec<_>, ParseError>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Self(tags))
    }
}

/// Where a page starts: strictly after this (sort key, id) in the sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Rating(Decimal, Uuid),
    Price(Decimal, Uuid),
    Newest(OffsetDateTime, Uuid),
}

impl Cursor {
    /// A position before every row of the sort order.
    fn first(sort: SortOrder) -> Self {
        match sort {
            SortOrder::Rating => Self::Rating(Decimal::MAX, Uuid::max()),
            SortOrder::Price => Self::Price(Decimal::NEGATIVE_ONE, Uuid::nil()),
            SortOrder::Newest => Self::Newest(cursor::NEWEST_FIRST_START.0, cursor::NEWEST_FIRST_START.1),
        }
    }

    fn after(sort: SortOrder, row: &AgentRow) -> Self {
        match sort {
            SortOrder::Rating => Self::Rating(row.rating, row.id),
            SortOrder::Price => Self::Price(row.price, row.id),
            SortOrder::Newest => Self::Newest(row.created_at, row.id),
        }
    }

    fn sort(self) -> SortOrder {
        match self {
            Self::Rating(..) => SortOrder::Rating,
            Self::Price(..) => SortOrder::Price,
            Self::Newest(..) => SortOrder::Newest,
        }
    }

    fn encode(self) -> String {
        let (key, id) = match self {
            Self::Rating(key, id) | Self::Price(key, id) => (key.to_string(), id),
            Self::Newest(at, id) => (cursor::time_key(at), id),
        };
        cursor::encode(&format!("sort={}", self.sort().as_str()), &key, id)
    }

    fn decode(text: &str, sort: SortOrder) -> Result<Self, String> {
        let (key, id) = cursor::decode(text, &format!("sort={}", sort.as_str()))?;
        let invalid = || "is not a cursor this API issued".to_owned();
        let decimal = || Decimal::from_str_exact(&key).map_err(|_| invalid());
        Ok(match sort {
            SortOrder::Rating => Self::Rating(decimal()?, id),
            SortOrder::Price => Self::Price(decimal()?, id),
            SortOrder::Newest => Self::Newest(cursor::parse_time_key(&key).ok_or_else(invalid)?, id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_sort() {
        let id = Uuid::new_v4();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
        for cursor in
            [Cursor::Rating(Decimal::new(475, 2), id), Cursor::Price(Decimal::new(1250, 2), id), Cursor::Newest(at, id)]
        {
            assert_eq!(Cursor::decode(&cursor.encode(), cursor.sort()), Ok(cursor));
        }
        let rating = Cursor::Rating(Decimal::ONE, id).encode();
        assert!(Cursor::decode(&rating, SortOrder::Price).unwrap_err().contains("sort=rating"));
    }
}
