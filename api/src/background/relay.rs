//! The relay: turns pending webhook deliveries into Cloud Tasks tasks.
//!
//! Restart-safe (a delivery stays `pending` until its task exists) and safe
//! with several API instances (`FOR UPDATE SKIP LOCKED`: each row is taken by
//! one relay at a time). Task names derive from the delivery id, its
//! generation and the attempt, so a task created twice (a crash between creating it and
//! marking the row) is refused by Cloud Tasks as ALREADY_EXISTS, which counts
//! as done. A Cloud Tasks outage leaves rows pending until it is back. The
//! relay makes each delivery's task for its next attempt (the first, unless
//! the sweep in `maintenance` re-queued it mid-schedule); the worker makes
//! the later ones (it owns the retry schedule).
//!
//! Each batch is shared between recipients (an agent's endpoint, a client's
//! callbacks), round robin: the relay walks the recipients that have pending
//! deliveries from where the last batch stopped (at most [`BATCH`] of them)
//! and takes each one's oldest queued deliveries, an equal share of the batch
//! apiece. A recipient's backlog (a recover of 1,000) thus takes one share
//! per turn, and another recipient's new delivery goes in the next batch
//! whenever fewer than [`BATCH`] recipients are waiting (otherwise within
//! their round). Within a recipient, deliveries go in the order they were
//! queued (`queued_at`: a new round is queued when it starts, not when the
//! delivery was first created).
//!
//! A batch costs at most [`BATCH`] + 1 index probes to find recipients and
//! one index range per recipient, whatever the backlog, and whatever the
//! table's statistics say: a backlog builds up while Cloud Tasks is away,
//! after the statistics were taken, when they still say nothing is pending.
//! Both statements can then only be planned one way (the pending index by
//! recipient is the only index on pending rows, and no statement joins the
//! table to itself), and each statement of the batch's transaction is cut
//! off after [`STATEMENT_TIMEOUT`] in any case. (A claim that locked its
//! rows through a self-join was planned, on such a backlog, as a scan of
//! every pending row per pending row: still running after 10 minutes at
//! 150k pending, and over 80 minutes in a soak run.)
//!
//! Each task is created in a `create_task` span, a child of the trace of the
//! request that wrote the delivery, and carries that span's `traceparent` to
//! the worker.

use std::time::Duration;

use shared::delivery_tasks::{DeliveryTasks, Push};
use shared::domain::DeliveryId;
use shared::error_chain::Causes;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::background::rounds;
use crate::outbox::OutboxSignal;

/// Rows taken per transaction.
const BATCH: i64 = 32;
/// How often the relay looks without being woken (other instances' rows,
/// rows left by a crash, an outage that ended).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failure, before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// One CreateTask call at most; a hung call must not hold the batch's locks.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Any one statement of a batch's transaction at most (each takes about a
/// millisecond); a plan gone wrong fails the batch, which is retried and
/// logged, instead of holding a core and the batch's locks.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Relay {
    db: PgPool,
    tasks: DeliveryTasks,
    wake: OutboxSignal,
    /// The last recipient served: the next batch walks the recipients from
    /// the one after it (wrapping around), so each has its turn.
    last_served: Option<Uuid>,
}

impl Relay {
    pub fn new(db: PgPool, tasks: DeliveryTasks, wake: OutboxSignal) -> Self {
        Self { db, tasks, wake, last_served: None }
    }

    /// Relays until `stopping` turns true.
    pub async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        loop {
            let round = self.relay_batch().await;
            if let Err(error) = &round {
                tracing::warn!(error = %Causes(&**error), "relay paused; deliveries stay pending");
            }
            let woken = self.wake.deliveries_written();
            if !rounds::wait_for_next_round(&round, woken, POLL_INTERVAL, RETRY_DELAY, &mut stopping).await {
                return;
            }
        }
    }

    /// Creates the tasks of one batch of pending deliveries, concurrently, and
    /// marks those created as dispatched; failed ones stay pending. A
    /// delivery's task is for its next attempt (the first, unless the sweep
    /// re-queued it mid-schedule). True when more may be waiting.
    async fn relay_batch(&mut self) -> anyhow::Result<bool> {
        // Committed asynchronously: a mark lost to a Postgres crash leaves the
        // row pending, and creating its task again is refused as ALREADY_EXISTS.
        let begin = format!(
            "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL synchronous_commit = off",
            STATEMENT_TIMEOUT.as_millis()
        );
        let mut tx = self.db.begin_with(sqlx::AssertSqlSafe(begin)).await?;
        let recipients = waiting_recipients(&mut tx, self.last_served).await?;
        let Some(last) = recipients.last() else {
            return Ok(false);
        };
        // The turn goes on after the last recipient this batch reached.
        self.last_served = Some(*last);
        let waiting = i64::try_from(recipients.len())?;
        let share = (BATCH + waiting - 1) / waiting;
        // Rows another relay holds are skipped, and the recipient's next ones
        // taken instead.
        let pending = sqlx::query!(
            r#"SELECT queued.id, queued.generation, queued.attempts, queued.traceparent, turn.recipient AS "recipient!"
               FROM unnest($1::uuid[]) AS turn (recipient)
               CROSS JOIN LATERAL (
                   SELECT w.id, w.generation, w.attempts, w.traceparent FROM webhook_deliveries w
                   WHERE w.status = 'pending' AND COALESCE(w.agent_id, w.client_id) = turn.recipient
                   ORDER BY w.queued_at LIMIT $2
                   FOR UPDATE SKIP LOCKED) queued"#,
            &recipients,
            share
        )
        .fetch_all(&mut *tx)
        .await?;
        let took_whole_share =
            |recipient: &Uuid| pending.iter().filter(|row| row.recipient == *recipient).count() as i64 == share;
        let more_waiting = waiting == BATCH || recipients.iter().any(took_whole_share);
        let tasks = &self.tasks;
        let created = futures_util::future::join_all(pending.iter().map(|delivery| async move {
            let id = DeliveryId::from_uuid(delivery.id);
            let push = Push { delivery_id: id, generation: delivery.generation, attempt: Some(delivery.attempts + 1) };
            let span = tracing::info_span!("create_task", delivery_id = %id, generation = delivery.generation);
            if let Some(traceparent) = &delivery.traceparent {
                shared::telemetry::set_parent_traceparent(&span, traceparent);
            }
            let name = push.task_name(None);
            let traceparent = span.in_scope(shared::telemetry::current_traceparent);
            let task = tasks.create(&name, &push, None, traceparent).instrument(span);
            let outcome = match tokio::time::timeout(CREATE_TIMEOUT, task).await {
                Ok(outcome) => outcome,
                Err(_) => Err(anyhow::anyhow!("CreateTask timed out")),
            };
            (delivery.id, name, outcome)
        }))
        .await;
        let (mut dispatched, mut names): (Vec<Uuid>, Vec<String>) = (Vec::new(), Vec::new());
        let mut failure = None;
        for (id, name, outcome) in created {
            match outcome {
                Ok(()) => {
                    dispatched.push(id);
                    names.push(name);
                }
                Err(error) => failure = Some(error),
            }
        }
        // The rows are still pending (this transaction holds their locks), and
        // testing it again would let the planner walk the whole pending index
        // instead of looking them up by id: after an outage, with statistics
        // taken before the backlog, that is 40-50 ms per batch at 60k pending.
        sqlx::query!(
            "UPDATE webhook_deliveries d
             SET status = 'dispatched', dispatched_at = now(), next_attempt_at = now(), task_name = created.name
             FROM unnest($1::uuid[], $2::text[]) AS created (id, name)
             WHERE d.id = created.id",
            &dispatched,
            &names
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        rounds::round_result(dispatched.len(), failure, "tasks not created").map(|_| more_waiting)
    }
}

/// Up to [`BATCH`] recipients with pending deliveries, in id order from the
/// one after `after`, wrapping around to the first: a skip scan of the
/// pending index by recipient (one probe per recipient), so its cost does
/// not grow with the backlog.
async fn waiting_recipients(tx: &mut PgConnection, after: Option<Uuid>) -> sqlx::Result<Vec<Uuid>> {
    let mut recipients = walk_recipients(&mut *tx, after, BATCH).await?;
    let short = BATCH - i64::try_from(recipients.len()).unwrap_or(BATCH);
    if let (Some(after), true) = (after, short > 0) {
        let wrapped = walk_recipients(&mut *tx, None, short).await?;
        recipients.extend(wrapped.into_iter().take_while(|recipient| *recipient <= after));
    }
    Ok(recipients)
}

/// Up to `limit` recipients with pending deliveries, after `after`, in order.
async fn walk_recipients(tx: &mut PgConnection, after: Option<Uuid>, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"WITH RECURSIVE walk (recipient) AS (
               (SELECT COALESCE(agent_id, client_id) FROM webhook_deliveries
                -- The nil uuid (no recipient has it) starts from the first; a plain
                -- comparison keeps the index condition in a generic plan too.
                WHERE status = 'pending' AND COALESCE(agent_id, client_id) > COALESCE($1, '00000000-0000-0000-0000-000000000000'::uuid)
                ORDER BY 1 LIMIT 1)
               UNION ALL
               SELECT (SELECT COALESCE(w.agent_id, w.client_id) FROM webhook_deliveries w
                       WHERE w.status = 'pending' AND COALESCE(w.agent_id, w.client_id) > walk.recipient
                       ORDER BY 1 LIMIT 1)
               FROM walk WHERE walk.recipient IS NOT NULL
           )
           SELECT recipient AS "recipient!" FROM walk WHERE recipient IS NOT NULL LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(tx)
    .await
}
