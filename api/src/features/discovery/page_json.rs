//! A discovery page's JSON, put together from each agent's own. An agent
//! whose row has not changed since this instance last showed it is taken
//! from [`FragmentCache`] (`AppState::public_agents`), so the page's
//! statement reads only ids, row versions and sort keys; the rows of the
//! others are read by id, all in one statement, and their JSON kept. Decoding
//! sixteen columns and writing them out again for every agent of every page
//! was most of the API's work on an uncached page.

use std::collections::HashMap;

use anyhow::anyhow;
use bytes::Bytes;
use sqlx::PgPool;
use uuid::Uuid;

use super::store::Listed;
use crate::http::error::ApiError;
use crate::http::fragment_cache::FragmentCache;
use crate::resources::agent;

/// Each listed agent's JSON, in the page's order.
pub async fn agents(db: &PgPool, kept: &FragmentCache, listed: &[Listed]) -> Result<Vec<Bytes>, ApiError> {
    let mut found: Vec<Option<Bytes>> = listed.iter().map(|agent| kept.get(agent.id, agent.version)).collect();
    let missing: Vec<Uuid> =
        listed.iter().zip(&found).filter(|(_, json)| json.is_none()).map(|(agent, _)| agent.id).collect();
    if !missing.is_empty() {
        let mut read = HashMap::with_capacity(missing.len());
        for row in agent::find_many(db, &missing).await? {
            // Perhaps newer than the version listed: kept as what it is.
            read.insert(row.id, agent::public_json(kept, row)?);
        }
        for (json, agent) in found.iter_mut().zip(listed).filter(|(json, _)| json.is_none()) {
            *json = read.remove(&agent.id);
        }
    }
    found
        .into_iter()
        .zip(listed)
        // Agents are never deleted (`agents_are_kept`), so this would be a bug.
        .map(|(json, agent)| json.ok_or_else(|| anyhow!("agent {} was listed, then not found by id", agent.id).into()))
        .collect()
}

/// The bytes serde writes for an `AgentPage` of these agents' JSON (a test
/// in this module's parent holds it to that).
pub fn page(agents: &[Bytes], next_cursor: Option<&str>) -> anyhow::Result<Bytes> {
    const OPEN: &[u8] = br#"{"agents":["#;
    const CURSOR: &[u8] = br#"],"next_cursor":"#;
    let agents_bytes: usize = agents.iter().map(|json| json.len() + 1).sum();
    let mut body = Vec::with_capacity(OPEN.len() + agents_bytes + CURSOR.len() + next_cursor.map_or(4, str::len) + 3);
    body.extend_from_slice(OPEN);
    for (index, json) in agents.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(json);
    }
    body.extend_from_slice(CURSOR);
    serde_json::to_writer(&mut body, &next_cursor)?;
    body.push(b'}');
    Ok(Bytes::from(body))
}
