//! Discovery's statements: one per sort order, each walking an index in
//! that order and stopping after LIMIT matches.
//!
//! With tags, the walk is over one tag's rows of `agent_tags` (the rarest
//! tag asked; see `tag_frequencies`), checking the other tags, price,
//! rating (and for the default sort the text) on the index entry: its cost depends on
//! how many entries it skips per match, not on the size of the catalog.
//! The optional filters are written as bounds (`COALESCE`) or `IS NULL OR`,
//! so each statement has one generic plan that fits every search. Postgres
//! would not pick it by itself (its custom plans look cheaper to it), and
//! planning per request cost more than the walk (0.17–0.26 ms against
//! 0.05–0.1 ms at 1M agents, growing with the catalog): so walks without
//! text run on the pool of generic plans (`AppState::generic_db`). With
//! text, the custom plan, which folds the query into a constant, measured
//! faster. The default sort walks the
//! reputation score (`agent_tags_by_score`). Only that index carries
//! the text (`agent_tags.search`): the other sorts check it on the agent,
//! since naming `t.search` there would make the score index the only
//! covering one, and the generic plan would walk it and sort the whole tag.
//! On the score walk the text is tested first: Postgres keeps the written
//! order of equally cheap conditions, and a word rejects most entries (5 in
//! 6 in the bench's text shape), so they skip the other tests (+9–10 % for
//! that statement alone in `pgbench`). Liveness (`seen_within_seconds`) is
//! checked on the agent: heartbeats must not rewrite tag rows.

use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::keyset::Cursor;

/// Above any price `numeric(18, 6)` holds: "no upper bound".
const NO_PRICE_CAP: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1e12

/// An agent as discovery lists it: its public JSON as Postgres keeps it
/// (`agents.public_json`), and the cursor of a page that starts after it.
pub struct ListedAgent {
    pub public_json: String,
    pub resume_after: Cursor,
}

/// A row of one sort order's statement, with the agent's key in that order
/// only: decoding all three per agent was a tenth of the API's instructions
/// on a page.
struct SortedRow<K> {
    id: Uuid,
    key: K,
    public_json: String,
}

fn listed<K>(rows: sqlx::Result<Vec<SortedRow<K>>>, cursor: fn(K, Uuid) -> Cursor) -> sqlx::Result<Vec<ListedAgent>> {
    let rows = rows?.into_iter();
    Ok(rows.map(|row| ListedAgent { resume_after: cursor(row.key, row.id), public_json: row.public_json }).collect())
}

pub struct Filters<'a> {
    /// Every tag the agent must have, and the one to walk.
    pub tags: Option<(&'a [String], &'a str)>,
    pub text: Option<&'a str>,
    pub max_price: Option<Decimal>,
    pub min_rating: Option<Decimal>,
    /// Only agents whose last heartbeat is this recent.
    pub seen_since: Option<OffsetDateTime>,
}

/// Up to `fetch` active agents matching `filters`, strictly after `after`:
/// on `db`, or for a tag walk without text on `generic_plans` (a pool whose
/// connections use generic plans; it may be `db` itself).
pub async fn fetch(
    db: &PgPool,
    generic_plans: &PgPool,
    filters: &Filters<'_>,
    after: Cursor,
    fetch: i64,
) -> sqlx::Result<Vec<ListedAgent>> {
    let Filters { tags, text, max_price, min_rating, seen_since } = *filters;
    let Some((tags, walk)) = tags else { return fetch_untagged(db, filters, after, fetch).await };
    let db = if text.is_none() { generic_plans } else { db };
    let max_price = max_price.unwrap_or(NO_PRICE_CAP);
    let min_rating = min_rating.unwrap_or(Decimal::ZERO);
    match after {
        Cursor::Score(score, id) => listed(
            sqlx::query_as!(
                SortedRow,
                r#"SELECT a.id, a.score AS key, a.public_json
               FROM agent_tags t JOIN agents a ON a.id = t.agent_id
               WHERE t.tag = $1
                 AND ($5::text IS NULL OR t.search @@ (SELECT websearch_to_tsquery('english', $5)))
                 AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
                 AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
                 AND (t.score, t.agent_id) < ($6, $7)
               ORDER BY t.score DESC, t.agent_id DESC LIMIT $8"#,
                walk,
                tags,
                max_price,
                min_rating,
                text,
                score,
                id,
                fetch,
                seen_since
            )
            .fetch_all(db)
            .await,
            Cursor::Score,
        ),
        Cursor::Price(price, id) => listed(
            sqlx::query_as!(
                SortedRow,
                r#"SELECT a.id, a.price AS key, a.public_json
               FROM agent_tags t JOIN agents a ON a.id = t.agent_id
               WHERE t.tag = $1 AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
                 AND ($5::text IS NULL OR a.search @@ (SELECT websearch_to_tsquery('english', $5)))
                 AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
                 AND (t.price, t.agent_id) > ($6, $7)
               ORDER BY t.price, t.agent_id LIMIT $8"#,
                walk,
                tags,
                max_price,
                min_rating,
                text,
                price,
                id,
                fetch,
                seen_since
            )
            .fetch_all(db)
            .await,
            Cursor::Price,
        ),
        Cursor::Newest(created_at, id) => listed(
            sqlx::query_as!(
                SortedRow,
                r#"SELECT a.id, a.created_at AS key, a.public_json
               FROM agent_tags t JOIN agents a ON a.id = t.agent_id
               WHERE t.tag = $1 AND t.capabilities @> $2 AND t.price <= $3 AND t.rating >= $4
                 AND ($5::text IS NULL OR a.search @@ (SELECT websearch_to_tsquery('english', $5)))
                 AND ($9::timestamptz IS NULL OR a.last_seen_at >= $9)
                 AND (t.created_at, t.agent_id) < ($6, $7)
               ORDER BY t.created_at DESC, t.agent_id DESC LIMIT $8"#,
                walk,
                tags,
                max_price,
                min_rating,
                text,
                created_at,
                id,
                fetch,
                seen_since
            )
            .fetch_all(db)
            .await,
            Cursor::Newest,
        ),
    }
}

/// No tag asked: the agents table's own sort indexes, or its text index
/// when the words are rare (Postgres plans these per request).
async fn fetch_untagged(
    db: &PgPool,
    filters: &Filters<'_>,
    after: Cursor,
    fetch: i64,
) -> sqlx::Result<Vec<ListedAgent>> {
    let Filters { text, max_price, min_rating, seen_since, .. } = *filters;
    match after {
        Cursor::Score(score, id) => listed(sqlx::query_as!(SortedRow,
            "SELECT id, score AS key, public_json FROM agents
             WHERE active AND ($1::text IS NULL OR search @@ websearch_to_tsquery('english', $1)) AND ($2::numeric IS NULL OR price <= $2) AND ($3::numeric IS NULL OR rating >= $3)
             AND ($7::timestamptz IS NULL OR last_seen_at >= $7)
             AND (score, id) < ($4, $5) ORDER BY score DESC, id DESC LIMIT $6",
            text, max_price, min_rating, score, id, fetch, seen_since).fetch_all(db).await, Cursor::Score),
        Cursor::Price(price, id) => listed(sqlx::query_as!(SortedRow,
            "SELECT id, price AS key, public_json FROM agents
             WHERE active AND ($1::text IS NULL OR search @@ websearch_to_tsquery('english', $1)) AND ($2::numeric IS NULL OR price <= $2) AND ($3::numeric IS NULL OR rating >= $3)
             AND ($7::timestamptz IS NULL OR last_seen_at >= $7)
             AND (price, id) > ($4, $5) ORDER BY price, id LIMIT $6",
            text, max_price, min_rating, price, id, fetch, seen_since).fetch_all(db).await, Cursor::Price),
        Cursor::Newest(created_at, id) => listed(sqlx::query_as!(SortedRow,
            "SELECT id, created_at AS key, public_json FROM agents
             WHERE active AND ($1::text IS NULL OR search @@ websearch_to_tsquery('english', $1)) AND ($2::numeric IS NULL OR price <= $2) AND ($3::numeric IS NULL OR rating >= $3)
             AND ($7::timestamptz IS NULL OR last_seen_at >= $7)
             AND (created_at, id) < ($4, $5) ORDER BY created_at DESC, id DESC LIMIT $6",
            text, max_price, min_rating, created_at, id, fetch, seen_since).fetch_all(db).await, Cursor::Newest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_price_cap_is_above_every_storable_price() {
        assert_eq!(NO_PRICE_CAP, Decimal::from(1_000_000_000_000_i64));
    }
}
