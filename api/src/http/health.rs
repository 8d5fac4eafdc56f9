//! Liveness and readiness, for Cloud Run's probes and load balancers.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use fred::prelude::ClientLike;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::replica::ReplicaReport;
use crate::http::state::AppState;

/// How long a readiness check waits for each store.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one readiness answer is served again: however many probes (or
/// a flood of them) arrive, each store is checked at most once a second per
/// instance, and concurrent probes share that one check.
const READINESS_TTL: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    let answers: ReadinessCache = moka::future::Cache::builder().max_capacity(1).time_to_live(READINESS_TTL).build();
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).layer(Extension(answers))
}

type ReadinessCache = moka::future::Cache<(), (StatusCode, Readiness)>;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub postgres: CheckResult,
    pub redis: CheckResult,
    /// The read replica (`DATABASE_READ_URL`) as last measured; absent
    /// without one. Never makes the API not ready: the primary serves its
    /// reads meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaReport>,
}

#[derive(Debug, Serialize, ToSchema, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Ok,
    Unreachable,
}

/// The process is alive. Says nothing about its dependencies.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: Postgres and Redis both answer within a second. The
/// answer is at most a second old, and says where the read replica stands
/// when there is one.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "a dependency is unreachable", body = Readiness)
    )
)]
async fn readyz(
    State(state): State<AppState>,
    Extension(answers): Extension<ReadinessCache>,
) -> (StatusCode, Json<Readiness>) {
    let (status, readiness) = answers.get_with((), check_stores(&state)).await;
    (status, Json(readiness))
}

async fn check_stores(state: &AppState) -> (StatusCode, Readiness) {
    let (postgres, redis) = tokio::join!(check_postgres(state), check_redis(state));
    let ready = postgres == CheckResult::Ok && redis == CheckResult::Ok;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let replica = state.replica.as_deref().map(|replica| replica.report());
    (status, Readiness { status: if ready { "ready" } else { "not_ready" }, postgres, redis, replica })
}

async fn check_postgres(state: &AppState) -> CheckResult {
    check("postgres", sqlx::query_scalar!("SELECT 1 AS \"one!\"").fetch_one(&state.db)).await
}

async fn check_redis(state: &AppState) -> CheckResult {
    check("redis", state.redis.ping::<String>(None)).await
}

async fn check<T, E: std::fmt::Display>(store: &'static str, probe: impl Future<Output = Result<T, E>>) -> CheckResult {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(_)) => CheckResult::Ok,
        Ok(Err(error)) => {
            tracing::warn!(store, error = %error, "readiness check failed");
            CheckResult::Unreachable
        }
        Err(_) => {
            tracing::warn!(store, "readiness check timed out");
            CheckResult::Unreachable
        }
    }
}
