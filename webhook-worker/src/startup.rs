//! Building and running the worker: the same code in `main` and in tests.
//! Wires the pools, clients and delivery policy into [`WorkerState`] and
//! routes Cloud Tasks' pushes to `push`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use shared::batches::{self, Batched};
use shared::db::Plans;
use shared::delivery_tasks::DeliveryTasks;
use shared::egress::EgressClient;
use shared::sealing::Sealer;
use shared::settings::Settings;
use tokio::net::TcpListener;

use crate::attempts::Successes;
use crate::lease::Leases;
use crate::policy::Policy;
use crate::push;
use crate::push_auth::PushAuth;
use crate::slots::Slots;
use crate::state::WorkerState;

/// The User-Agent of every webhook we send.
pub const USER_AGENT: &str = concat!("agent-registry-webhooks/", env!("CARGO_PKG_VERSION"));

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
        let delivery_policy = Policy::from_settings(&settings);
        let egress = EgressClient::new(settings.egress_policy.clone(), delivery_policy.send_timeout(), USER_AGENT)
            .context("cannot build the webhook client")?;
        let shutdown_grace = settings.shutdown_grace;
        let push_auth = PushAuth::from_settings(&settings)?;
        let sealer = Sealer::from_settings(&settings).await?;
        let tasks = DeliveryTasks::connect(settings.cloud_tasks.clone()).await?;
        let redis = shared::redis::connect(&settings)?;
        // A slot outlives its holder by at most the push's hold.
        let slot_lease = delivery_policy.hold();
        let slots = Slots::new(
            redis,
            &settings.redis_key_prefix,
            settings.webhook_endpoint_concurrency,
            settings.webhook_recipient_concurrency,
            slot_lease,
        );
        let db = shared::db::lazy_pool(&settings, settings.database_max_connections, Plans::Generic)?;
        // Leases and successes share the pool evenly.
        let writers = batches::writers_for(&db, 2);
        let state = WorkerState {
            leases: Batched::start(db.clone(), Leases { hold: delivery_policy.hold() }, writers),
            successes: Batched::start(db.clone(), Successes, writers),
            db,
            egress,
            tasks,
            slots: Arc::new(slots),
            push_auth: Arc::new(push_auth),
            sealer: Arc::new(sealer),
            policy: Arc::new(delivery_policy),
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
