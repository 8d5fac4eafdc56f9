//! The expiry task: a pending job whose `accept_by` passed, or an accepted
//! job whose `deadline` passed, becomes `expired`, with a `job.expired`
//! event and webhooks to the agent's endpoint and the client's callback.
//!
//! - One API instance at a time does it (a `Singleton` lease named
//!   `expiry`), polling every second: the due scans are probes of small
//!   partial indexes (`jobs_pending_by_accept_by`,
//!   `jobs_accepted_by_deadline`), cheap when nothing is due.
//! - Restart-safe: it works from the table, not from timers, so whatever
//!   fell due while no instance ran expires on the next round.
//! - Bounded: each batch (at most `BATCH` jobs per window) is one
//!   transaction — one conditional `UPDATE … RETURNING`, then each job's
//!   event and deliveries — and a round goes on while batches come back full.
//! - Exactly once: the update takes its rows `FOR UPDATE SKIP LOCKED` and
//!   re-checks status and window, the negation of what accept and complete
//!   require (`jobs::store::transition`), so a racing accept and expiry
//!   cannot both move a job; whichever locks the row first wins, and the
//!   other matches nothing.
//!
//! A failed round is logged and the next one (a second later) retries.

use std::time::Duration;

use shared::domain::JobWindow;
use shared::error_chain::Causes;
use shared::events::{self, Aggregate, JOB_EXPIRED};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;

use crate::background::singleton::Singleton;
use crate::outbox::{self, OutboxSignal};
use crate::resources::job::{Job, JobRow};

/// Jobs expired per window per statement.
const BATCH: i64 = 200;
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longer than a batch takes; the lease is renewed before every batch, and
/// a holder that died is replaced after this.
const LEASE: Duration = Duration::from_secs(15);

pub struct Expiry {
    db: PgPool,
    wake: OutboxSignal,
    lease: Singleton,
}

/// What one batch expired.
#[derive(Debug, Default, Clone, Copy)]
struct Expired {
    accept_window: usize,
    deadline: usize,
}

impl Expired {
    fn total(self) -> usize {
        self.accept_window + self.deadline
    }

    /// Whether a window's scan filled its batch: more may be due.
    fn full(self) -> bool {
        self.accept_window as i64 >= BATCH || self.deadline as i64 >= BATCH
    }
}

impl Expiry {
    pub fn new(db: PgPool, wake: OutboxSignal) -> Self {
        Self { db, wake, lease: Singleton::new("expiry", LEASE) }
    }

    /// Runs until `stopping` turns true, then hands the lease back.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        loop {
            self.round(&stopping).await;
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = stopping.wait_for(|stopping| *stopping) => break,
            }
        }
        self.lease.release(&self.db).await;
    }

    /// Expires everything due, batch after batch, while this process holds
    /// the lease (renewed before each batch).
    async fn round(&self, stopping: &watch::Receiver<bool>) {
        let mut expired = Expired::default();
        while !*stopping.borrow() {
            match self.lease.hold(&self.db).await {
                Ok(true) => {}
                Ok(false) => break, // Another instance does it.
                Err(error) => {
                    tracing::warn!(%error, "cannot take the expiry lease");
                    break;
                }
            }
            match self.expire_batch().await {
                Ok(batch) => {
                    expired.accept_window += batch.accept_window;
                    expired.deadline += batch.deadline;
                    if !batch.full() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %Causes(&*error), "job expiry failed; the next round retries");
                    break;
                }
            }
        }
        if expired.total() > 0 {
            tracing::info!(
                expired = expired.total(),
                accept_window = expired.accept_window,
                deadline = expired.deadline,
                "jobs expired"
            );
        }
    }

    /// One transaction: up to `BATCH` due jobs of each window expired, each
    /// with its `job.expired` event and deliveries; wakes the relay and the
    /// publisher after the commit.
    async fn expire_batch(&self) -> anyhow::Result<Expired> {
        let mut tx = self.db.begin().await?;
        // Rows another transaction holds (an accept, a complete, another
        // expirer) are skipped; the outer condition re-checks each row as
        // locked, so a row that moved meanwhile is left alone.
        let rows = sqlx::query_as!(
            JobRow,
            "UPDATE jobs
             SET status = 'expired', updated_at = now(),
                 expired_because = CASE WHEN status = 'pending' THEN 'accept_window' ELSE 'deadline' END
             WHERE id = ANY(
                     ARRAY(SELECT id FROM jobs WHERE status = 'pending' AND accept_by <= now()
                           ORDER BY accept_by LIMIT $1 FOR UPDATE SKIP LOCKED)
                     || ARRAY(SELECT id FROM jobs WHERE status = 'accepted' AND deadline <= now()
                              ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED))
               AND ((status = 'pending' AND accept_by <= now()) OR (status = 'accepted' AND deadline <= now()))
             RETURNING id, client_id, agent_id, status, input, result, failure_reason, price, fee, callback_url,
                       accept_by, deadline, expired_because, created_at, updated_at",
            BATCH,
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut expired = Expired::default();
        for row in rows {
            let job = Job::try_from(row)?;
            match job.expired_because {
                Some(JobWindow::AcceptWindow) => expired.accept_window += 1,
                Some(JobWindow::Deadline) => expired.deadline += 1,
                None => anyhow::bail!("job {} expired without a reason", job.id),
            }
            // A trace per expired job, which its deliveries continue.
            let span = tracing::info_span!("job expired", job_id = %job.id, expired_because = ?job.expired_because);
            async {
                let event =
                    events::record(&mut tx, Aggregate::Job(job.id), JOB_EXPIRED, &job.clone().for_agent()).await?;
                outbox::deliver_to_agent(&mut tx, event, job.id, job.agent_id).await?;
                outbox::deliver_to_callback(&mut tx, event, job.id).await
            }
            .instrument(span)
            .await?;
        }
        tx.commit().await?;
        if expired.total() > 0 {
            self.wake.committed();
        }
        Ok(expired)
    }
}
