//! `same-answers`: whether the FastAPI original (`--original-url`) answers
//! what the API (`--url`) answers, so the side-by-side bench compares the
//! same work. For each discovery query, the first pages (following
//! `next_cursor`) must list the same agents in the same order with the same
//! cursor; then every agent seen is read from both, and each field both
//! answers must be equal (timestamps as instants: the two print fractions of
//! a second differently).

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Pages compared per query: the first, and those its cursors lead to.
const PAGES_PER_QUERY: usize = 3;
/// At most this many agents read from both.
const MOST_AGENTS: usize = 500;
/// At most this many differences listed.
const MOST_LISTED: usize = 20;

/// What was compared and how the answers differed.
#[derive(Default)]
pub struct Comparison {
    pages: usize,
    agents: usize,
    differences: Vec<String>,
}

impl Comparison {
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": "same-answers",
            "pages": self.pages,
            "agents": self.agents,
            "differences": self.differences.len(),
            "first_differences": &self.differences[..self.differences.len().min(MOST_LISTED)],
        })
    }

    pub fn differs(&self) -> bool {
        !self.differences.is_empty()
    }
}

pub async fn compare(
    http: &reqwest::Client,
    ours: &str,
    original: &str,
    queries: &[&str],
) -> anyhow::Result<Comparison> {
    let mut comparison = Comparison::default();
    let mut seen: Vec<String> = Vec::new();
    for query in queries {
        let mut cursor: Option<String> = None;
        for page_number in 1..=PAGES_PER_QUERY {
            let path = match &cursor {
                Some(cursor) => format!("/v1/agents?{query}&cursor={cursor}"),
                None => format!("/v1/agents?{query}"),
            };
            let (our_page, their_page) = (get(http, ours, &path).await?, get(http, original, &path).await?);
            comparison.pages += 1;
            let (our_ids, their_ids) = (ids(&our_page)?, ids(&their_page)?);
            if our_ids != their_ids {
                comparison
                    .differences
                    .push(format!("{query}, page {page_number}: ours {our_ids:?}, theirs {their_ids:?}"));
                break;
            }
            if our_page["next_cursor"] != their_page["next_cursor"] {
                comparison.differences.push(format!(
                    "{query}, page {page_number}: next_cursor ours {}, theirs {}",
                    our_page["next_cursor"], their_page["next_cursor"]
                ));
                break;
            }
            for id in our_ids {
                if !seen.contains(&id) {
                    seen.push(id);
                }
            }
            match our_page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    for id in seen.iter().take(MOST_AGENTS) {
        let path = format!("/v1/agents/{id}");
        let (ours, theirs) = (get(http, ours, &path).await?, get(http, original, &path).await?);
        comparison.agents += 1;
        let (ours, theirs) = (object(&ours)?, object(&theirs)?);
        for (field, our_value) in ours {
            if let Some(their_value) = theirs.get(field)
                && !same_value(field, our_value, their_value)
            {
                comparison.differences.push(format!("{id}: {field} ours {our_value}, theirs {their_value}"));
            }
        }
    }
    if comparison.pages == 0 || comparison.agents == 0 {
        bail!("nothing to compare: no query given, or no agent found");
    }
    Ok(comparison)
}

async fn get(http: &reqwest::Client, base_url: &str, path: &str) -> anyhow::Result<Value> {
    let url = format!("{base_url}{path}");
    let response = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {url} did not answer JSON"))
}

fn ids(page: &Value) -> anyhow::Result<Vec<String>> {
    let agents = page["agents"].as_array().context("a discovery page has agents")?;
    agents.iter().map(|agent| Ok(agent["id"].as_str().context("an agent has an id")?.to_owned())).collect()
}

fn object(value: &Value) -> anyhow::Result<&Map<String, Value>> {
    value.as_object().context("an agent is a JSON object")
}

/// Equal, or for a `…_at` field the same instant.
fn same_value(field: &str, ours: &Value, theirs: &Value) -> bool {
    if ours == theirs {
        return true;
    }
    let instant = |value: &Value| value.as_str().and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    field.ends_with("_at") && instant(ours).is_some() && instant(ours) == instant(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_compare_as_instants_and_everything_else_exactly() {
        let (short, padded) = (json!("2026-12-05T15:10:17.35729Z"), json!("2026-12-05T15:10:17.357290Z"));
        assert!(same_value("created_at", &short, &padded));
        assert!(!same_value("created_at", &short, &json!("2026-12-05T15:10:17.357291Z")));
        assert!(!same_value("name", &json!("12.5"), &json!("12.50")), "only timestamps are read");
        assert!(!same_value("price", &json!("12.5"), &json!("12.50")));
        assert!(same_value("last_seen_at", &Value::Null, &Value::Null));
    }
}
