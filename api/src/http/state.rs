//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fred::prelude::Pool as RedisPool;
use shared::db::Server;
use shared::egress::EgressClient;
use shared::sealing::Sealer;
use shared::settings::Settings;
use sqlx::PgPool;

use crate::http::error::ApiError;
use crate::http::known_keys::KnownKeys;
use crate::http::page_cache::PageCache;
use crate::http::platform_keys::PlatformKeys;
use crate::http::replica::{Pools, Replica, ReplicaStatus};
use crate::outbox::OutboxSignal;

/// How the API introduces itself when it fetches an agent's card.
const AGENT_CARD_USER_AGENT: &str = "agent-registry (A2A Agent Card fetch)";
/// How long fetching an agent's card may take, start to end.
const AGENT_CARD_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Handlers and layers take the state by value, so axum clones it for each
/// one that asks: behind one `Arc` that is one reference count, where a
/// struct of a dozen handles was a dozen (-1.2 % of the API's instructions
/// per uncached discovery page).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub db: PgPool,
    /// Statements planned once per connection: discovery's tag walks
    /// (`discovery::store`) and the statement creating concurrent requests'
    /// jobs (`jobs::store`). `DISCOVERY_DATABASE_CONNECTIONS` of the
    /// connections; `db` itself when that is 0.
    pub generic_db: PgPool,
    /// `DATABASE_READ_URL`'s pools and where the replica stands; only
    /// [`AppState::public_read`] picks it.
    pub replica: Option<Arc<Replica>>,
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
        let Pools { db, generic_db } = Pools::connect(&settings, Server::Primary, &settings.database_url)?;
        let replica = match &settings.database_read_url {
            Some(url) => Some(Arc::new(Replica::new(Pools::connect(&settings, Server::Replica, url)?))),
            None => None,
        };
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
        Ok(Self(Arc::new(AppStateInner {
            db,
            generic_db,
            replica,
            redis,
            settings: Arc::new(settings),
            outbox: OutboxSignal::default(),
            public_reads,
            known_keys: Arc::default(),
            sealer,
            platform_keys,
            egress,
        })))
    }
}

impl AppState {
    /// The primary's pools.
    pub fn primary(&self) -> Pools {
        Pools { db: self.db.clone(), generic_db: self.generic_db.clone() }
    }

    /// Runs `read`, a public read (unsigned, no write before it in the
    /// request), on the replica while it is in use, else on the primary. A
    /// replica read that fails, or finds nothing, is run again on the primary.
    pub async fn public_read<T, F, Fut>(&self, read: F) -> Result<T, ApiError>
    where
        F: Fn(Pools) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let Some(replica) = self.replica.as_deref().filter(|replica| replica.status() == ReplicaStatus::InUse) else {
            return read(self.primary()).await;
        };
        match read(replica.pools.clone()).await {
            // Perhaps written a moment ago: the primary knows.
            Err(ApiError::NotFound(_)) => read(self.primary()).await,
            Err(error @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
                tracing::warn!(%error, "a read on the replica failed; public reads go to the primary until it is measured again");
                replica.lost();
                read(self.primary()).await
            }
            answer => answer,
        }
    }
}
