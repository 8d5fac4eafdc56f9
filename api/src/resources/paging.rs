//! Pages of an agent's public records (its ratings, its receipts), as
//! `GET /v1/agents/{id}/<kind>` answers them.

use shared::domain::AgentId;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::http::cursor;
use crate::http::error::ApiError;
use crate::http::extract::{PageQuery, page_size};
use crate::resources::agent;

/// A page of `agent`'s records of `kind`, newest first by `position`:
/// `list` reads up to a limit of the agent's rows strictly before a
/// position. An empty first page of an agent that was never registered is
/// a 404.
pub async fn agent_records<Row, Rows>(
    db: &PgPool,
    agent: AgentId,
    query: &PageQuery,
    kind: &'static str,
    list: impl FnOnce(AgentId, (OffsetDateTime, Uuid), i64) -> Rows,
    position: impl Fn(&Row) -> (OffsetDateTime, Uuid),
) -> Result<(Vec<Row>, Option<String>), ApiError>
where
    Rows: Future<Output = sqlx::Result<Vec<Row>>>,
{
    let limit = page_size(query.limit)?;
    let before =
        cursor::newest_first_after(query.cursor.as_deref(), kind).map_err(|e| ApiError::invalid("cursor", e))?;
    let rows = list(agent, before, i64::from(limit) + 1).await?;
    if rows.is_empty() && query.cursor.is_none() && !agent::exists(db, agent).await? {
        return Err(agent::not_found(agent));
    }
    Ok(cursor::newest_first_page(rows, limit, kind, position))
}
