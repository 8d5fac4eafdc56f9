//! Successes recorded together: each push hands its record to one queue
//! and waits for it to commit; a few writers take whatever the queue holds
//! (up to [`MOST_PER_STATEMENT`]) into one `attempts::write`. Under light
//! load a record is written alone at once, so nothing waits for a batch to
//! fill; under load the records that queued while the writers were busy go
//! together, which is when Postgres's fixed cost per statement matters.
//!
//! A push answers Cloud Tasks only after its own record committed (or
//! failed, and then the push fails and Cloud Tasks pushes again), so a batch
//! never acknowledges what it did not write. When a batch fails, each of its
//! records is written alone, so one record Postgres refuses fails only its
//! own push.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::attempts::{self, AttemptRecord, Commit};

/// Records in one statement at most: about where the cost per record stops
/// falling (PERFORMANCE.md), and a bound on one statement's size.
const MOST_PER_STATEMENT: usize = 64;
/// Statements in flight at once. One slow statement does not stop the
/// others, and the pool keeps connections for leases.
const WRITERS: usize = 4;
/// Records waiting at most; a push waits for room beyond that.
const QUEUE: usize = 1024;

type Outcome = Result<bool, Arc<sqlx::Error>>;

struct Queued {
    record: AttemptRecord,
    recorded: oneshot::Sender<Outcome>,
}

/// The queue of successes to record; cloning it shares the queue.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Queued>,
}

impl Recorder {
    /// Starts the writers on `db`'s runtime; they stop when every
    /// `Recorder` is dropped and the queue is empty.
    pub fn start(db: PgPool) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, waiting));
        Self { queue }
    }

    /// Records a success (committed asynchronously: `Commit::Asynchronous`);
    /// false when the lease was lost meanwhile.
    pub async fn record(&self, record: AttemptRecord) -> anyhow::Result<bool> {
        let (recorded, outcome) = oneshot::channel();
        self.queue
            .send(Queued { record, recorded })
            .await
            .map_err(|_| anyhow::anyhow!("the attempt recorder has stopped"))?;
        let outcome = outcome.await.map_err(|_| anyhow::anyhow!("the attempt recorder dropped a record"))?;
        Ok(outcome?)
    }
}

async fn write_batches(db: PgPool, mut waiting: mpsc::Receiver<Queued>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    loop {
        // A writer first, then the records: whatever queued while every
        // writer was busy goes in its statement.
        let Ok(writer) = writers.clone().acquire_owned().await else { return };
        let mut batch = Vec::new();
        if waiting.recv_many(&mut batch, MOST_PER_STATEMENT).await == 0 {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            write_batch(&db, batch).await;
            drop(writer);
        });
    }
}

async fn write_batch(db: &PgPool, batch: Vec<Queued>) {
    let (records, waiters): (Vec<AttemptRecord>, Vec<oneshot::Sender<Outcome>>) =
        batch.into_iter().map(|queued| (queued.record, queued.recorded)).unzip();
    match attempts::write(db, &records, Commit::Asynchronous).await {
        Ok(recorded) => {
            for (record, waiter) in records.iter().zip(waiters) {
                // A push that stopped waiting is not told.
                let _ = waiter.send(Ok(recorded.contains(&record.lease_token)));
            }
        }
        Err(error) if records.len() == 1 => {
            let _ = waiters.into_iter().next().map(|waiter| waiter.send(Err(Arc::new(error))));
        }
        Err(error) => {
            tracing::warn!(%error, records = records.len(), "a batch of attempt records failed; writing each alone");
            for (record, waiter) in records.iter().zip(waiters) {
                let outcome = attempts::write(db, std::slice::from_ref(record), Commit::Asynchronous).await;
                let _ = waiter.send(outcome.map(|recorded| !recorded.is_empty()).map_err(Arc::new));
            }
        }
    }
}
