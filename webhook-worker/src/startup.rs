//! Building and running the worker: the same code in `main` and in tests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use shared::db::Plans;
use shared::sealing::Sealer;
use shared::settings::Settings;
use sqlx::PgPool;
use tokio::net::TcpListener;

use shared::delivery_tasks::DeliveryTasks;

use crate::push;
use crate::push_auth::PushAuth;
use crate::slots::Slots;
use shared::egress::EgressClient;

/// The User-Agent of every webhook we send.
pub const USER_AGENT: &str = concat!("agent-registry-webhooks/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
pub struct WorkerState {
    pub db: PgPool,
    pub egress: EgressClient,
    /// Where the next attempts (and deferrals) go.
    pub tasks: DeliveryTasks,
    pub slots: Arc<Slots>,
    /// Who may push: Cloud Tasks' OIDC token, or the local shared secret.
    pub push_auth: Arc<PushAuth>,
    /// Opens the webhook secrets the worker signs with.
    pub sealer: Arc<Sealer>,
    pub settings: Arc<Settings>,
}

pub struct Worker {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
}

impl Worker {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let address = std::net::SocketAddr::from(([0, 0, 0, 0], settings.port));
        let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
        Self::build_on(listener, settings).await
    }

    /// On a listener bound already, so a test knows the worker's URL (which
    /// the worker puts on the tasks it creates) before building it.
    pub async fn build_on(listener: TcpListener, settings: Settings) -> anyhow::Result<Self> {
        let policy = settings.egress_policy.clone();
        let timeout = settings.webhook_timeout;
        let egress = EgressClient::new(policy, timeout, USER_AGENT).context("cannot build the webhook client")?;
        let shutdown_grace = settings.shutdown_grace;
        let push_auth = PushAuth::from_settings(&settings)?;
        let sealer = Sealer::from_settings(&settings).await?;
        let tasks = DeliveryTasks::connect(settings.cloud_tasks.clone()).await?;
        let redis = shared::redis::connect(&settings)?;
        // A slot outlives its holder by at most the send's timeout and some.
        let slot_lease = timeout + Duration::from_secs(5);
        let slots = Slots::new(redis, &settings.redis_key_prefix, settings.webhook_endpoint_concurrency, slot_lease);
        let state = WorkerState {
            db: shared::db::lazy_pool(&settings, settings.database_max_connections, Plans::Chosen)?,
            egress,
            tasks,
            slots: Arc::new(slots),
            push_auth: Arc::new(push_auth),
            sealer: Arc::new(sealer),
            settings: Arc::new(settings),
        };
        let routes = Router::new()
            .route("/tasks/deliver", post(push::handle))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz));
        let router = shared::telemetry::traced(routes).with_state(state);
        Ok(Self { listener, router, shutdown_grace })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or_default()
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stopping, _) = tokio::sync::watch::channel(false);
        shared::serve::serve(self.listener, self.router, shutdown, self.shutdown_grace, stopping).await
    }
}

/// Ready when Postgres answers: without it no delivery can be loaded.
async fn readyz(State(state): State<WorkerState>) -> (StatusCode, &'static str) {
    let ping = sqlx::query_scalar!("SELECT 1 AS \"one!\"").fetch_one(&state.db);
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "postgres unreachable"),
    }
}
