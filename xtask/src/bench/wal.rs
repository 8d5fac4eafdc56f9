//! The WAL a run made Postgres write, per operation: bytes, and how many of
//! them were full-page images (the first change to a page after a
//! checkpoint writes the whole 8 kB page). What a write costs Cloud SQL in
//! I/O and a read replica in bytes to replay, and unlike CPU time it does
//! not move with the box's speed.
//!
//! Read from the WAL itself between two positions (`pg_walinspect`), not
//! from `pg_stat_wal`: a backend adds to those counters at most once a
//! second, so a pooled connection's last second would land in the next
//! run. It counts the whole server: with the bench's services the only
//! writers, that is their WAL (autovacuum's included).

use std::time::{Duration, Instant};

use anyhow::bail;
use sqlx::{Connection, Executor, PgConnection};

/// A position in the WAL.
pub struct Sample {
    lsn: String,
}

/// Where to read the WAL: the bench database's server (as a superuser:
/// `CHECKPOINT` and `pg_walinspect` need one).
pub struct Source<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub database_url: &'a str,
}

impl Source<'_> {
    /// The WAL's end now, after a `CHECKPOINT` if `checkpoint`: the run that
    /// follows then pays every full-page image of a fresh checkpoint
    /// interval, the most it can, whenever the last checkpoint happened.
    pub fn sample(&self, checkpoint: bool) -> anyhow::Result<Sample> {
        self.runtime.block_on(async {
            let mut db = PgConnection::connect(self.database_url).await?;
            if checkpoint {
                db.execute("CHECKPOINT").await?;
            }
            let lsn = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text").fetch_one(&mut db).await?;
            Ok(Sample { lsn })
        })
    }

    /// The WAL written from `before` to `after`, per operation. It waits
    /// until that WAL is flushed (asynchronous commits leave it to the WAL
    /// writer for a moment): `pg_walinspect` reads flushed WAL only.
    pub fn cost(&self, before: &Sample, after: &Sample, operations: f64) -> anyhow::Result<Cost> {
        self.runtime.block_on(async {
            let mut db = PgConnection::connect(self.database_url).await?;
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect").await?;
            let started = Instant::now();
            while !sqlx::query_scalar::<_, bool>("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn")
                .bind(&after.lsn)
                .fetch_one(&mut db)
                .await?
            {
                if started.elapsed() > Duration::from_secs(10) {
                    bail!("the WAL up to {} was still not flushed after 10 s", after.lsn);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let (bytes, image_bytes): (f64, f64) = sqlx::query_as(
                "SELECT coalesce(sum(combined_size), 0)::float8, coalesce(sum(fpi_size), 0)::float8
                 FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn)",
            )
            .bind(&before.lsn)
            .bind(&after.lsn)
            .fetch_one(&mut db)
            .await?;
            Ok(Cost::of(bytes, image_bytes, operations))
        })
    }
}

/// The WAL of a run, per operation.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub bytes_per_op: f64,
    /// Of those, the bytes of full-page images.
    pub image_bytes_per_op: f64,
}

impl Cost {
    fn of(bytes: f64, image_bytes: f64, operations: f64) -> Cost {
        let operations = operations.max(1.0);
        Cost { bytes_per_op: bytes / operations, image_bytes_per_op: image_bytes / operations }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_operation() {
        let cost = Cost::of(20_000.0, 8_192.0, 10.0);
        assert_eq!((cost.bytes_per_op, cost.image_bytes_per_op), (2_000.0, 819.2));
        let none = Cost::of(0.0, 0.0, 0.0);
        assert_eq!((none.bytes_per_op, none.image_bytes_per_op), (0.0, 0.0), "no operation, no division by zero");
    }
}
