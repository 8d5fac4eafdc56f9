//! Building and running the service: the same code in `main` and in tests,
//! which bind port 0 and read the chosen port back.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use shared::delivery_tasks::DeliveryTasks;
use shared::settings::Settings;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::background::expiry::Expiry;
use crate::background::maintenance::Maintenance;
use crate::background::publisher::EventPublisher;
use crate::background::relay::Relay;
use crate::background::replica_lag::ReplicaLag;
use crate::features::{agent_cards, agents, clients, console, deliveries, discovery, jobs, jwks, ratings, receipts};
use crate::http::error;
use crate::http::openapi::{self, ApiDoc};
use crate::http::state::AppState;
use crate::http::{health, rate_limit};

/// After the server stopped, how long the background tasks get to finish.
const BACKGROUND_STOP_WAIT: Duration = Duration::from_secs(1);

pub struct Application {
    listener: TcpListener,
    router: Router,
    relay: Relay,
    maintenance: Maintenance,
    publisher: EventPublisher,
    expiry: Expiry,
    /// Only with `DATABASE_READ_URL`.
    replica_lag: Option<ReplicaLag>,
    shutdown_grace: Duration,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and wires the routes.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let address = SocketAddr::from(([0, 0, 0, 0], settings.port));
        let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
        let shutdown_grace = settings.shutdown_grace;
        let state = AppState::connect(settings).await?;
        let tasks = DeliveryTasks::connect(state.settings.cloud_tasks.clone()).await?;
        let relay = Relay::new(state.db.clone(), tasks.clone(), state.outbox.clone());
        let maintenance = Maintenance::new(&state, tasks);
        let publisher = EventPublisher::new(state.db.clone(), &state.settings.pubsub, state.outbox.clone()).await?;
        let expiry = Expiry::new(state.db.clone(), state.outbox.clone());
        let replica_lag = ReplicaLag::new(&state);
        Ok(Self { listener, router: router(state), relay, maintenance, publisher, expiry, replica_lag, shutdown_grace })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and
    /// lets in-flight requests finish, for at most the grace period. The relay,
    /// the maintenance task, the publisher, the expiry task and the replica's
    /// lag measurement run alongside and stop with the server.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let maintenance = tokio::spawn(self.maintenance.run(stopped.clone()));
        let publisher = tokio::spawn(self.publisher.run(stopped.clone()));
        let expiry = tokio::spawn(self.expiry.run(stopped.clone()));
        let replica_lag = self.replica_lag.map(|lag| tokio::spawn(lag.run(stopped)));
        let served = shared::serve::serve(self.listener, self.router, shutdown, self.shutdown_grace, stopping).await;
        // They saw `stopping` when shutdown began: a moment to end their
        // round and hand their leases back (so the next instance need not
        // wait for them to lapse), then they are stopped wherever they are.
        let mut tasks: Vec<_> = [relay, maintenance, publisher, expiry].into_iter().chain(replica_lag).collect();
        let _ = tokio::time::timeout(BACKGROUND_STOP_WAIT, async {
            for task in &mut tasks {
                let _ = task.await;
            }
        })
        .await;
        for task in tasks {
            task.abort();
        }
        served
    }
}

fn router(state: AppState) -> Router {
    let body_limit = state.settings.request_body_limit_bytes;
    let (routes, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(agents::router())
        .merge(agent_cards::router())
        .merge(clients::router())
        .merge(jobs::router(&state))
        .merge(ratings::router())
        .merge(receipts::router())
        .merge(deliveries::router())
        .merge(discovery::router())
        .merge(health::router())
        .merge(jwks::router())
        .split_for_parts();
    let sorts = discovery::SORT_ORDERS.map(|sort| sort.as_str());
    let roles = jobs::Role::ALL.map(jobs::Role::as_str);
    openapi::complete(&mut api, &[("/v1/jobs", "role", &roles), ("/v1/agents", "sort", &sorts)]);
    let routes = routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit_per_ip))
        .merge(console::router(&state))
        .merge(openapi::router(api))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit));
    // Outermost: a preflight is answered before rate limits and routing.
    let routes = match cors(&state.settings.cors_allowed_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    shared::telemetry::traced(routes).with_state(state)
}

/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS for the browser apps at `origins`; `None` (no CORS headers at all)
/// when there are none. Browsers may send the headers a signed write needs and
/// read the rate-limit and idempotency headers the API answers with.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    let request_headers = ["content-type", "signature", "signature-input", "content-digest", "idempotency-key"];
    let response_headers = ["ratelimit", "ratelimit-policy", "retry-after", "idempotent-replayed"];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers(request_headers.map(HeaderName::from_static))
            .expose_headers(response_headers.map(HeaderName::from_static))
            .max_age(CORS_MAX_AGE),
    )
}
