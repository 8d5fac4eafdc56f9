//! The soak's traffic: what a catalogue's readers look like, rather than the
//! six fixed filters of `discovery`. Discovery queries are drawn from a
//! universe of 2.3 million distinct ones (a tag among the seed's 500
//! `skill-N`, a `limit` of 5–50, a `max_price` of 1–100) by rank: a
//! Zipf-distributed draw gives a hot head and a long tail, a uniform one a
//! pure tail, and the hot set is the 1,000 top ranks alone.

use rand::Rng;
use rand::distr::Distribution;
use rand_distr::Zipf;

use crate::{CreateJob, RequestMaker};

const TAGS: u64 = 500;
const LIMITS: u64 = 46;
const PRICES: u64 = 100;
/// Distinct discovery queries.
const UNIVERSE: u64 = TAGS * LIMITS * PRICES;
/// The top ranks the `soak-hot` scenario keeps to.
const HOT_SET: u64 = 1_000;
/// Zipf's exponent: about a third of draws land in the top 100 of the universe.
const ZIPF_EXPONENT: f64 = 1.0;

/// The discovery query of `rank` (0-based), a bijection onto the universe.
fn query(rank: u64) -> String {
    let tag = rank % TAGS;
    let limit = 5 + (rank / TAGS) % LIMITS;
    let max_price = 1 + (rank / (TAGS * LIMITS)) % PRICES;
    format!("capabilities=skill-{tag}&limit={limit}&max_price={max_price}")
}

/// Which ranks a scenario draws.
pub enum Draw {
    /// Zipf over the whole universe: a hot head and a long tail.
    Zipf(Zipf<f64>),
    /// Uniform over the universe: nearly every query is new.
    Tail,
    /// Zipf over the hot set only.
    Hot(Zipf<f64>),
}

impl Draw {
    pub fn named(scenario: &str) -> anyhow::Result<Self> {
        Ok(match scenario {
            "soak" => Self::Zipf(Zipf::new(UNIVERSE as f64, ZIPF_EXPONENT)?),
            "soak-hot" => Self::Hot(Zipf::new(HOT_SET as f64, ZIPF_EXPONENT)?),
            _ => Self::Tail,
        })
    }

    fn rank(&self) -> u64 {
        let mut rng = rand::rng();
        match self {
            // Zipf samples 1..=n as floats.
            Self::Zipf(zipf) | Self::Hot(zipf) => zipf.sample(&mut rng) as u64 - 1,
            Self::Tail => rng.random_range(0..UNIVERSE),
        }
    }
}

/// Discovery by `draw`; for `soak`, also agent reads (a quarter of requests,
/// Zipf over the agents known) and signed job creations by many clients
/// (one in eight).
pub struct Soak {
    pub base_url: String,
    pub draw: Draw,
    pub agent_urls: Vec<String>,
    pub agents: Option<Zipf<f64>>,
    pub writes: Option<CreateJob>,
}

impl Soak {
    pub fn new(
        base_url: &str,
        draw: Draw,
        agents: &[(String, String)],
        writes: Option<CreateJob>,
    ) -> anyhow::Result<Self> {
        let agent_urls = agents.iter().map(|(id, _)| format!("{base_url}/v1/agents/{id}")).collect();
        let agents = match draw {
            Draw::Zipf(_) if !agents.is_empty() => Some(Zipf::new(agents.len() as f64, ZIPF_EXPONENT)?),
            _ => None,
        };
        Ok(Self { base_url: base_url.to_owned(), draw, agent_urls, agents, writes })
    }
}

impl RequestMaker for Soak {
    async fn request(&self, http: &reqwest::Client, n: usize) -> anyhow::Result<reqwest::RequestBuilder> {
        if let Some(writes) = self.writes.as_ref().filter(|_| n % 8 == 7) {
            return writes.request(http, n).await;
        }
        if let Some(agents) = self.agents.as_ref().filter(|_| n % 4 == 1) {
            let pick = agents.sample(&mut rand::rng()) as usize - 1;
            return Ok(http.get(&self.agent_urls[pick]));
        }
        Ok(http.get(format!("{}/v1/agents?{}", self.base_url, query(self.draw.rank()))))
    }
}

/// Registers the writers of `soak`: this many clients, each signing its own jobs.
pub const SOAK_CLIENTS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_map_onto_distinct_queries() {
        let queries: std::collections::HashSet<String> = (0..TAGS * LIMITS + 7).map(query).collect();
        assert_eq!(queries.len() as u64, TAGS * LIMITS + 7);
        assert_eq!(query(0), "capabilities=skill-0&limit=5&max_price=1");
        assert_eq!(query(UNIVERSE - 1), "capabilities=skill-499&limit=50&max_price=100");
    }
}
