//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fred::prelude::Pool as RedisPool;
use shared::db::{Plans, lazy_pool};
use shared::egress::EgressClient;
use shared::sealing::Sealer;
use shared::settings::Settings;
use sqlx::PgPool;

use crate::http::known_keys::KnownKeys;
use crate::http::page_cache::PageCache;
use crate::http::platform_keys::PlatformKeys;
use crate::outbox::OutboxSignal;

/// How the API introduces itself when it fetches an agent's card.
const AGENT_CARD_USER_AGENT: &str = "agent-registry (A2A Agent Card fetch)";
/// How long fetching an agent's card may take, start to end.
const AGENT_CARD_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Discovery's tag walks: `DISCOVERY_DATABASE_CONNECTIONS` of the
    /// connections, planning each statement once (`discovery::store`);
    /// `db` itself when that is 0.
    pub discovery_db: PgPool,
    pub redis: RedisPool,
    pub settings: Arc<Settings>,
    pub outbox: OutboxSignal,
    pub public_reads: Arc<PageCache>,
    pub known_keys: Arc<KnownKeys>,
    /// Seals webhook secrets before they are stored (the API never opens one).
    pub sealer: Arc<Sealer>,
    pub platform_keys: Arc<PlatformKeys>,
    /// Fetches Agent Cards from the URLs agents give: public addresses only.
    pub egress: EgressClient,
}

impl AppState {
    /// Builds both pools without waiting for either store: the service starts
    /// (and `/readyz` says not ready) while a store is away, and both pools
    /// reconnect by themselves when it returns.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let (db, discovery_db) = database_pools(&settings)?;
        let redis = shared::redis::connect(&settings)?;
        let public_reads = Arc::new(PageCache::new(settings.public_reads, settings.public_reads_max_bytes));
        let sealer = Arc::new(Sealer::from_settings(&settings).await?);
        let platform_keys = Arc::new(PlatformKeys::new(
            settings.platform_signing_key.as_ref(),
            settings.platform_signing_key_previous.as_ref(),
        )?);
        let policy = settings.egress_policy.clone();
        let egress = EgressClient::new(policy, AGENT_CARD_FETCH_TIMEOUT, AGENT_CARD_USER_AGENT)
            .context("cannot build the Agent Card client")?;
        Ok(Self {
            db,
            discovery_db,
            redis,
            settings: Arc::new(settings),
            outbox: OutboxSignal::default(),
            public_reads,
            known_keys: Arc::default(),
            sealer,
            platform_keys,
            egress,
        })
    }
}

/// The API's pool and discovery's, carved from `DATABASE_MAX_CONNECTIONS`.
fn database_pools(settings: &Settings) -> anyhow::Result<(PgPool, PgPool)> {
    let (total, discovery) = (settings.database_max_connections, settings.discovery_database_connections);
    if discovery == 0 {
        let db = lazy_pool(settings, total, Plans::Chosen)?;
        return Ok((db.clone(), db));
    }
    if discovery >= total {
        anyhow::bail!(
            "setting DISCOVERY_DATABASE_CONNECTIONS ({discovery}) must be below DATABASE_MAX_CONNECTIONS ({total}), \
             which it is carved from; 0 lets discovery share the pool"
        );
    }
    Ok((lazy_pool(settings, total - discovery, Plans::Chosen)?, lazy_pool(settings, discovery, Plans::Generic)?))
}
