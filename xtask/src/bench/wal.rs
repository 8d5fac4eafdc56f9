//! The WAL a run made Postgres write, per operation: bytes, and full-page
//! images (the first change to a page after a checkpoint writes the whole
//! 8 kB page). What a write costs Cloud SQL in I/O and a read replica in
//! bytes to replay, and unlike CPU time it does not move with the box's
//! speed. Read from `pg_stat_wal`, which counts the whole server: with the
//! bench's services the only writers, that is their WAL (autovacuum's
//! included).

use sqlx::{Connection, Executor, PgConnection};

/// `pg_stat_wal`'s counters at one moment.
pub struct Sample {
    bytes: f64,
    full_page_images: i64,
}

/// Where to read the counters: the bench database's server.
pub struct Source<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub database_url: &'a str,
}

impl Source<'_> {
    /// The counters now, after a `CHECKPOINT` if `checkpoint` (so the run
    /// that follows pays the full-page images a busy server pays at any
    /// moment of its checkpoint interval, not fewer because one is near).
    pub fn sample(&self, checkpoint: bool) -> anyhow::Result<Sample> {
        self.runtime.block_on(async {
            let mut db = PgConnection::connect(self.database_url).await?;
            if checkpoint {
                db.execute("CHECKPOINT").await?;
            }
            let (bytes, full_page_images) =
                sqlx::query_as("SELECT wal_bytes::float8, wal_fpi FROM pg_stat_wal").fetch_one(&mut db).await?;
            Ok(Sample { bytes, full_page_images })
        })
    }
}

/// The WAL of a run, per operation.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub bytes_per_op: f64,
    pub full_page_images_per_op: f64,
}

impl Cost {
    pub fn between(before: &Sample, after: &Sample, operations: f64) -> Cost {
        let operations = operations.max(1.0);
        Cost {
            bytes_per_op: (after.bytes - before.bytes).max(0.0) / operations,
            full_page_images_per_op: (after.full_page_images - before.full_page_images).max(0) as f64 / operations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_operation() {
        let before = Sample { bytes: 1_000.0, full_page_images: 10 };
        let after = Sample { bytes: 21_000.0, full_page_images: 30 };
        let cost = Cost::between(&before, &after, 10.0);
        assert_eq!((cost.bytes_per_op, cost.full_page_images_per_op), (2_000.0, 2.0));
        let none = Cost::between(&before, &before, 0.0);
        assert_eq!((none.bytes_per_op, none.full_page_images_per_op), (0.0, 0.0), "no operation, no division by zero");
    }
}
