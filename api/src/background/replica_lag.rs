//! Measures how far the read replica (`DATABASE_READ_URL`) is behind the
//! primary, every `MEASURE_INTERVAL`, and records it in the [`Replica`]
//! the read path consults: `in_use` within `READ_REPLICA_MAX_LAG`, otherwise
//! lagging, unreachable or not a replica, and public reads go to the
//! primary until a later measurement finds it caught up again. Every
//! instance measures for itself (its reads follow its own measurement), so
//! no lease.
//!
//! The lag: first the primary's WAL position (`pg_current_wal_lsn()`), then
//! whether the replica has replayed up to it. If it has, it holds every
//! commit made before the measurement began: lag 0. If not, the lag is the
//! time since the replica last replayed a commit (`now() -
//! pg_last_xact_replay_timestamp()`). That time alone would grow on an idle
//! primary, where nothing is behind; the position check keeps it at 0 then.
//! With the primary unreachable, the target is what the replica has received
//! (`pg_last_wal_receive_lsn()`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::http::replica::{Replica, ReplicaStatus};
use crate::http::state::AppState;

/// How often the lag is measured: how long a replica that fell behind or
/// went away serves public reads at most (a failed read there moves them
/// at once), and how soon a recovered one is used again.
const MEASURE_INTERVAL: Duration = Duration::from_secs(1);
/// How long each of the two statements may take before the server counts as unreachable.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the lag is logged (the `read_replica_lag_seconds` log-based metric).
const REPORT_INTERVAL: Duration = Duration::from_secs(60);

pub struct ReplicaLag {
    primary: PgPool,
    replica: Arc<Replica>,
    max_lag: Duration,
}

/// One measurement.
struct Measured {
    status: ReplicaStatus,
    lag: Option<Duration>,
}

impl ReplicaLag {
    /// `None` without a replica.
    pub fn new(state: &AppState) -> Option<Self> {
        let replica = state.replica.clone()?;
        Some(Self { primary: state.db.clone(), replica, max_lag: state.settings.read_replica_max_lag })
    }

    /// Runs until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut last_report: Option<tokio::time::Instant> = None;
        loop {
            let Measured { status, lag } = self.measure().await;
            let before = self.replica.record(status, lag);
            let lag_seconds = lag.map(|lag| lag.as_secs_f64());
            if before != status {
                tracing::info!(?status, ?before, read_replica_lag_seconds = lag_seconds, "read replica status changed");
            }
            if last_report.is_none_or(|at| at.elapsed() >= REPORT_INTERVAL) {
                last_report = Some(tokio::time::Instant::now());
                tracing::info!(?status, read_replica_lag_seconds = lag_seconds, "read replica lag");
            }
            tokio::select! {
                () = tokio::time::sleep(MEASURE_INTERVAL) => {}
                _ = stopping.wait_for(|stopping| *stopping) => break,
            }
        }
    }

    async fn measure(&self) -> Measured {
        let primary_position = match tokio::time::timeout(MEASURE_TIMEOUT, primary_position(&self.primary)).await {
            Ok(Ok(position)) => Some(position),
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot read the primary's WAL position; comparing with what the replica received");
                None
            }
            Err(_) => None,
        };
        let replayed = tokio::time::timeout(MEASURE_TIMEOUT, replay(&self.replica.pools.db, primary_position)).await;
        let replayed = match replayed {
            Ok(Ok(replayed)) => replayed,
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot measure the read replica");
                return Measured { status: ReplicaStatus::Unreachable, lag: None };
            }
            Err(_) => return Measured { status: ReplicaStatus::Unreachable, lag: None },
        };
        if !replayed.in_recovery {
            return Measured { status: ReplicaStatus::NotReplica, lag: None };
        }
        let lag = if replayed.caught_up {
            Some(Duration::ZERO)
        } else {
            replayed.since_replay_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        };
        let status = match lag {
            Some(lag) if lag <= self.max_lag => ReplicaStatus::InUse,
            _ => ReplicaStatus::Lagging,
        };
        Measured { status, lag }
    }
}

/// The primary's current WAL position, as text (`pg_lsn`).
async fn primary_position(primary: &PgPool) -> sqlx::Result<String> {
    sqlx::query_scalar!(r#"SELECT pg_current_wal_lsn()::text AS "position!""#).fetch_one(primary).await
}

struct Replayed {
    in_recovery: bool,
    /// It has replayed up to `target` (or, without one, all it received).
    caught_up: bool,
    /// Milliseconds since it last replayed a commit; `None`: none since it started.
    since_replay_ms: Option<i64>,
}

async fn replay(replica: &PgPool, target: Option<String>) -> sqlx::Result<Replayed> {
    sqlx::query_as!(
        Replayed,
        r#"SELECT pg_is_in_recovery() AS "in_recovery!",
                  COALESCE(pg_last_wal_replay_lsn() >= COALESCE($1::text::pg_lsn, pg_last_wal_receive_lsn()), false)
                      AS "caught_up!",
                  (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint AS since_replay_ms"#,
        target,
    )
    .fetch_one(replica)
    .await
}
