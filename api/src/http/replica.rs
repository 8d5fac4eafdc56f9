//! Public reads on a streaming read replica (`DATABASE_READ_URL`): the
//! pools to it, where it stands (an atomic the lag task in
//! `background::replica_lag` writes and the read path only reads), and
//! [`AppState::public_read`], the one way a public read picks its server.
//!
//! The rule (an Architecture Invariant): only unsigned public GETs may run
//! on the replica, and only while it is `in_use` (measured within
//! `READ_REPLICA_MAX_LAG` of the primary). Owner reads, writes and the reads
//! inside or after a write stay on the primary. A replica read that fails
//! (the replica went away between two measurements) or finds nothing (a row
//! written a moment ago, e.g. the agent just registered) is asked of the
//! primary before answering, so nobody gets an error or a 404 the primary
//! would not give.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use shared::db::{Plans, Server, lazy_pool_to};
use shared::settings::Settings;
use sqlx::PgPool;
use utoipa::ToSchema;

/// The pools of one server: its main pool and one of generic plans
/// (the same pool when `DISCOVERY_DATABASE_CONNECTIONS` is 0).
#[derive(Clone)]
pub struct Pools {
    pub db: PgPool,
    pub generic_db: PgPool,
}

impl Pools {
    /// `server`'s pools at `url`, carved from `DATABASE_MAX_CONNECTIONS` as
    /// `DISCOVERY_DATABASE_CONNECTIONS` says.
    pub fn connect(settings: &Settings, server: Server, url: &secrecy::SecretString) -> anyhow::Result<Self> {
        let (total, discovery) = (settings.database_max_connections, settings.discovery_database_connections);
        if discovery == 0 {
            let db = lazy_pool_to(server, url, total, Plans::Chosen)?;
            return Ok(Self { generic_db: db.clone(), db });
        }
        if discovery >= total {
            anyhow::bail!(
                "setting DISCOVERY_DATABASE_CONNECTIONS ({discovery}) must be below DATABASE_MAX_CONNECTIONS ({total}), \
                 which it is carved from; 0 lets discovery share the pool"
            );
        }
        Ok(Self {
            db: lazy_pool_to(server, url, total - discovery, Plans::Chosen)?,
            generic_db: lazy_pool_to(server, url, discovery, Plans::Generic)?,
        })
    }
}

/// Where the replica stands, as last measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ReplicaStatus {
    /// Not measured yet: public reads stay on the primary.
    Starting = 0,
    /// Within `READ_REPLICA_MAX_LAG`: public reads run there.
    InUse = 1,
    /// Further behind than `READ_REPLICA_MAX_LAG`: public reads on the primary.
    Lagging = 2,
    /// Not answering (or a read there just failed): public reads on the primary.
    Unreachable = 3,
    /// Answering but not in recovery (promoted, or not a replica at all), so
    /// not following the primary: public reads on the primary.
    NotReplica = 4,
}

impl ReplicaStatus {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::InUse,
            2 => Self::Lagging,
            3 => Self::Unreachable,
            4 => Self::NotReplica,
            _ => Self::Starting,
        }
    }
}

/// Lag not known (never measured, or the replica is unreachable).
const UNKNOWN_LAG: u64 = u64::MAX;

/// The replica's pools and where it stands.
pub struct Replica {
    pub pools: Pools,
    status: AtomicU8,
    lag_ms: AtomicU64,
}

impl Replica {
    pub fn new(pools: Pools) -> Self {
        Self { pools, status: AtomicU8::new(ReplicaStatus::Starting as u8), lag_ms: AtomicU64::new(UNKNOWN_LAG) }
    }

    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// How far behind the primary it was at the last measurement.
    pub fn lag(&self) -> Option<Duration> {
        Some(self.lag_ms.load(Ordering::Relaxed)).filter(|&ms| ms != UNKNOWN_LAG).map(Duration::from_millis)
    }

    /// A measurement; returns the status it replaced.
    pub fn record(&self, status: ReplicaStatus, lag: Option<Duration>) -> ReplicaStatus {
        let lag_ms = lag.map_or(UNKNOWN_LAG, |lag| u64::try_from(lag.as_millis()).unwrap_or(UNKNOWN_LAG - 1));
        self.lag_ms.store(lag_ms, Ordering::Relaxed);
        ReplicaStatus::from_u8(self.status.swap(status as u8, Ordering::Relaxed))
    }

    /// A read there failed: out of use until the next measurement finds it again.
    pub fn lost(&self) {
        self.status.store(ReplicaStatus::Unreachable as u8, Ordering::Relaxed);
    }

    /// Where it stands, for `/readyz`.
    pub fn report(&self) -> ReplicaReport {
        ReplicaReport { status: self.status(), lag_ms: self.lag().map(|lag| lag.as_millis() as u64) }
    }
}

/// The replica in `/readyz` (never a reason for not ready: the primary
/// serves its reads meanwhile).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ReplicaReport {
    pub status: ReplicaStatus,
    /// Milliseconds behind the primary at the last measurement; absent when unknown.
    pub lag_ms: Option<u64>,
}
