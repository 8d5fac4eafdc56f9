//! Which tag of a multi-tag search to walk: the rarest one, so the walk
//! skips the fewest entries per match (walking a 1-in-500 tag and checking a
//! 1-in-6 tag skips ~5 entries per match; the other way round, ~500).
//!
//! Frequencies come from Postgres's own statistics on `agent_tags.tag`
//! (kept by autovacuum's ANALYZE, so no write path pays for them), read at
//! most once a minute per instance. Stale or missing figures only make a
//! search slower, never wrong: every tag is still checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

const REFRESH_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct TagFrequencies {
    cache: moka::future::Cache<(), Arc<HashMap<String, f32>>>,
}

impl Default for TagFrequencies {
    fn default() -> Self {
        Self { cache: moka::future::Cache::builder().max_capacity(1).time_to_live(REFRESH_EVERY).build() }
    }
}

impl TagFrequencies {
    /// The tag of `tags` (at least one) with the fewest agents. A tag the
    /// statistics do not list is rarer than every tag they do.
    pub async fn rarest<'a>(&self, db: &PgPool, tags: &'a [String]) -> &'a str {
        if let [only] = tags {
            return only;
        }
        let frequencies = match self.cache.try_get_with((), load(db)).await {
            Ok(frequencies) => frequencies,
            Err(error) => {
                tracing::warn!(%error, "cannot read the tag statistics; walking the first tag");
                return &tags[0];
            }
        };
        rarest_of(&frequencies, tags)
    }
}

fn rarest_of<'a>(frequencies: &HashMap<String, f32>, tags: &'a [String]) -> &'a str {
    let frequency = |tag: &String| frequencies.get(tag).copied().unwrap_or(0.0);
    tags.iter().min_by(|a, b| frequency(a).total_cmp(&frequency(b))).map_or("", String::as_str)
}

async fn load(db: &PgPool) -> sqlx::Result<Arc<HashMap<String, f32>>> {
    let stats = sqlx::query!(
        r#"SELECT most_common_vals::text::text[] AS "tags!", most_common_freqs AS "frequencies!"
           FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'agent_tags' AND attname = 'tag'"#
    )
    .fetch_optional(db)
    .await?;
    Ok(Arc::new(stats.map(|row| row.tags.into_iter().zip(row.frequencies).collect()).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_the_rarest_tag_and_takes_an_unlisted_tag_as_rarest() {
        let frequencies = HashMap::from([("translation".into(), 0.16), ("legal".into(), 0.12)]);
        let tags = |list: &[&str]| list.iter().map(|tag| tag.to_string()).collect::<Vec<_>>();
        assert_eq!(rarest_of(&frequencies, &tags(&["legal", "translation"])), "legal");
        assert_eq!(rarest_of(&frequencies, &tags(&["translation", "legal"])), "legal");
        assert_eq!(rarest_of(&frequencies, &tags(&["translation", "skill-42", "legal"])), "skill-42");
    }
}
