//! Statements shared by concurrent requests (the worker's pushes, the
//! API's job creations): each request hands its input to one queue and
//! waits for its own output; a few writers take whatever the queue holds
//! (up to [`MOST_PER_STATEMENT`]) into one statement. A run takes its
//! inputs in its statement's `lock_order` (deliveries by id, jobs by client
//! and idempotency key), so two batches usually take their common rows of
//! that table in one order; a deadlock that still happens (rows of other tables, another
//! plan) fails only a run, which then runs again in halves. Under load the
//! inputs that queued while the writers were busy go together, which is
//! when Postgres's fixed cost per statement (starting the executor on its
//! tables and their indexes, checking the tables' constraints, committing)
//! matters: 16 records of attempts in one statement cost Postgres about a
//! quarter of what 16 statements cost (PERFORMANCE.md). Under light load a
//! free writer takes an input at once, alone, unless its statement gathers
//! ([`Statement::GATHER`]): then the writer waits a few milliseconds for
//! company, so that a steady trickle shares statements too (the worker's,
//! whose few milliseconds nobody sees; not the API's, which a person waits
//! on).
//!
//! A request goes on only with its own output, after the statement
//! committed (or failed, and then the request fails), so a batch never
//! acknowledges what it did not write. When a batch fails in a way one
//! input may have caused (its data, a constraint, a deadlock), its halves
//! run apart, down to single inputs, so one input Postgres refuses fails
//! only its own request, with its own error; any other failure (the pool,
//! the connection, an error raised for another reason) is every caller's,
//! with no run again: the worker's pushes fail and Cloud Tasks pushes them
//! again, the API answers each request as the error says.
//!
//! The statements run on a pool of generic plans: one made per connection,
//! where a custom plan for a statement of arrays would cost more to make
//! than the statement to run.

use std::cmp::Ordering;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Inputs in one statement at most: past where the cost per input stops
/// falling, and a bound on one statement's size.
const MOST_PER_STATEMENT: usize = 64;

/// Inputs waiting at most; a push waits for room beyond that.
const QUEUE: usize = 1024;

/// A statement that runs for any number of inputs at once.
pub trait Statement: Send + Sync + 'static {
    type Input: Send + Sync + 'static;
    type Output: Send + 'static;
    /// The order a run takes its inputs in (by the key of the rows they
    /// lock), so two runs take their common rows in one order.
    fn lock_order(a: &Self::Input, b: &Self::Input) -> Ordering;
    /// How long a writer that found fewer than `MOST_PER_STATEMENT`
    /// inputs waits for more before running them: none for a request a
    /// person waits on; a few milliseconds where nobody notices them, so
    /// that a steady trickle (too slow to keep every writer busy, whose
    /// inputs would otherwise run one or two to a statement) still shares
    /// statements.
    const GATHER: Duration = Duration::ZERO;
    /// Runs once for `inputs`: one output per input, in their order.
    fn run(&self, db: &PgPool, inputs: &[Self::Input]) -> impl Future<Output = sqlx::Result<Vec<Self::Output>>> + Send;
}

/// Writers for one of `kinds` statements sharing `db`: an even share of its
/// connections, at most four (more statements in flight only make each
/// batch smaller), and at least one, so a pool smaller than `kinds` is
/// shared: its statements then wait for one another's connection.
pub fn writers_for(db: &PgPool, kinds: u32) -> usize {
    (db.options().get_max_connections() / kinds.max(1)).clamp(1, 4) as usize
}

/// One field of every input, as one array parameter of a statement.
pub fn column<'a, I, T>(inputs: &'a [I], field: impl Fn(&'a I) -> T) -> Vec<T> {
    inputs.iter().map(field).collect()
}

type Answer<T> = oneshot::Sender<sqlx::Result<T>>;

/// The queue of one statement's inputs; cloning it shares the queue.
pub struct Batched<S: Statement> {
    queue: mpsc::Sender<(S::Input, Answer<S::Output>)>,
}

impl<S: Statement> Clone for Batched<S> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<S: Statement> Batched<S> {
    /// Starts `writers` (at least one) on the current runtime: the
    /// statements in flight at once, each on a connection of `db`
    /// (`writers_for` shares the pool out). They stop once every handle is
    /// dropped and the queue is empty.
    pub fn start(db: PgPool, statement: S, writers: usize) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, Arc::new(statement), writers, waiting));
        Self { queue }
    }

    /// Runs the statement for `input` (with whatever else is queued): its
    /// own output, or the error its statement failed with.
    pub async fn run(&self, input: S::Input) -> sqlx::Result<S::Output> {
        let (answer, output) = oneshot::channel();
        // The writers stop only once no handle is left, so neither happens
        // while one runs; if it did, the request's store is gone.
        self.queue.send((input, answer)).await.map_err(|_| sqlx::Error::PoolClosed)?;
        output.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn write_batches<S: Statement>(
    db: PgPool,
    statement: Arc<S>,
    writers: usize,
    mut waiting: mpsc::Receiver<(S::Input, Answer<S::Output>)>,
) {
    let writers = Arc::new(Semaphore::new(writers.max(1)));
    loop {
        // A writer first, then the inputs: whatever queued while every
        // writer was busy goes in its statement.
        let Ok(writer) = writers.clone().acquire_owned().await else { return };
        let mut batch = Vec::new();
        if waiting.recv_many(&mut batch, MOST_PER_STATEMENT).await == 0 {
            return;
        }
        gather(&mut waiting, &mut batch, S::GATHER).await;
        let (db, statement) = (db.clone(), statement.clone());
        tokio::spawn(async move {
            let mut batch = batch;
            batch.sort_by(|(a, _), (b, _)| S::lock_order(a, b));
            let (inputs, answers) = batch.into_iter().unzip();
            write_batch(&db, &*statement, inputs, answers).await;
            drop(writer);
        });
    }
}

/// Adds to `batch` what queues within `window`, up to a full statement.
async fn gather<T>(waiting: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, window: Duration) {
    if window.is_zero() {
        return;
    }
    let until = tokio::time::Instant::now() + window;
    while batch.len() < MOST_PER_STATEMENT {
        let more = waiting.recv_many(batch, MOST_PER_STATEMENT - batch.len());
        // Closed (0) or the window is over: what is here runs.
        if !matches!(tokio::time::timeout_at(until, more).await, Ok(1..)) {
            return;
        }
    }
}

/// Runs `inputs` in one statement and answers each caller. When an input
/// may be what failed it (bad data, a constraint, a deadlock), the halves
/// run apart, down to the input alone: one bad input among 64 costs about a
/// dozen statements and fails only its caller. Any other failure (the pool,
/// the connection) is every caller's.
fn write_batch<'a, S: Statement>(
    db: &'a PgPool,
    statement: &'a S,
    inputs: Vec<S::Input>,
    answers: Vec<Answer<S::Output>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let error = match statement.run(db, &inputs).await {
            Ok(outputs) if outputs.len() == inputs.len() => {
                // A caller that stopped waiting is not told.
                for (answer, output) in answers.into_iter().zip(outputs) {
                    let _ = answer.send(Ok(output));
                }
                return;
            }
            Ok(outputs) => sqlx::Error::Protocol(format!("{} outputs for {} inputs", outputs.len(), inputs.len())),
            Err(error) => error,
        };
        if inputs.len() > 1 && may_be_one_inputs(&error) {
            tracing::warn!(%error, inputs = inputs.len(), "a shared statement failed; running its halves apart");
            let (mut first, mut first_answers) = (inputs, answers);
            let (second, second_answers) =
                (first.split_off(first.len() / 2), first_answers.split_off(first_answers.len() / 2));
            write_batch(db, statement, first, first_answers).await;
            write_batch(db, statement, second, second_answers).await;
            return;
        }
        // One caller gets the error itself (its kind, constraint and code
        // decide its answer); several get each a copy of what they tell apart.
        match <[Answer<S::Output>; 1]>::try_from(answers) {
            Ok([answer]) => drop(answer.send(Err(error))),
            Err(answers) => {
                for answer in answers {
                    let _ = answer.send(Err(shared_error(&error)));
                }
            }
        }
    })
}

/// Whether one input may have caused `error`: Postgres refused its data
/// (class 22) or a constraint (23), or the statement lost a deadlock or a
/// serialization conflict (40), which a smaller statement may not meet.
fn may_be_one_inputs(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|error| error.code());
    code.is_some_and(|code| ["22", "23", "40"].iter().any(|class| code.starts_with(class)))
}

/// `error` again, for one of the callers it failed: the kinds callers tell
/// apart (the pool, the connection) keep their kind; the rest keep their
/// message.
fn shared_error(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Protocol(format!("a shared statement failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records the size of each statement it runs; its inputs are its outputs.
    struct Sizes<const GATHER_MS: u64>(Arc<Mutex<Vec<usize>>>);

    impl<const GATHER_MS: u64> Statement for Sizes<GATHER_MS> {
        type Input = u32;
        type Output = u32;
        const GATHER: Duration = Duration::from_millis(GATHER_MS);

        fn lock_order(a: &u32, b: &u32) -> Ordering {
            a.cmp(b)
        }

        async fn run(&self, _: &PgPool, inputs: &[u32]) -> sqlx::Result<Vec<u32>> {
            self.0.lock().unwrap().push(inputs.len());
            Ok(inputs.to_vec())
        }
    }

    /// Sends each input after its wait, from one task each, checks that each
    /// caller gets its own output back, and returns the statements' sizes.
    async fn sizes_for<const GATHER_MS: u64>(schedule: &[(u32, u64)]) -> Vec<usize> {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let db = PgPool::connect_lazy("postgres://127.0.0.1:1/never-connected").unwrap();
        let batched = Batched::start(db, Sizes::<GATHER_MS>(sizes.clone()), 4);
        let mut asked = Vec::new();
        for &(input, after_ms) in schedule {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let batched = batched.clone();
            asked.push((input, tokio::spawn(async move { batched.run(input).await.unwrap() })));
        }
        // A gather that never ends would otherwise hang the test on its paused clock.
        let answered = tokio::time::timeout(Duration::from_secs(1), async {
            for (input, answer) in asked {
                assert_eq!(answer.await.unwrap(), input, "each caller gets its own output");
            }
        });
        answered.await.expect("every input is answered");
        sizes.lock().unwrap().clone()
    }

    /// Inputs 1 ms apart for 3 ms, then one more 10 ms later.
    const TRICKLE: [(u32, u64); 5] = [(0, 0), (1, 1), (2, 1), (3, 1), (4, 10)];

    #[tokio::test(start_paused = true)]
    async fn a_trickle_shares_statements_when_the_statement_gathers() {
        assert_eq!(sizes_for::<5>(&TRICKLE).await, [4, 1], "the first four within 5 ms, the late one alone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_runs_one_by_one_when_the_statement_does_not_gather() {
        assert_eq!(sizes_for::<0>(&TRICKLE).await, [1, 1, 1, 1, 1], "a free writer takes each input at once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_counts_from_the_first_input_not_the_last() {
        let steady: Vec<(u32, u64)> = (0..9).map(|input| (input, if input == 0 { 0 } else { 2 })).collect();
        // Inputs at 0, 2, 4 ms go together, then 6, 8, 10, then 12, 14, 16.
        assert_eq!(sizes_for::<5>(&steady).await, [3, 3, 3], "no statement waits past its first input's 5 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_statement_runs_without_waiting() {
        let burst: Vec<(u32, u64)> = (0..65).map(|input| (input, 0)).collect();
        let started = tokio::time::Instant::now();
        assert_eq!(sizes_for::<5>(&burst).await, [64, 1], "at most 64 to a statement");
        // The late one waited its 5 ms; the 64 did not wait at all.
        assert_eq!(started.elapsed(), Duration::from_millis(5));
    }
}
