//! Statements shared by concurrent requests (the worker's pushes, the
//! API's job creations): each request hands its input to one queue and
//! waits for its own output; a few writers take whatever the queue holds
//! (up to [`MOST_PER_STATEMENT`]) into one statement. Under
//! light load an input runs alone at once, so nothing waits for a batch to
//! fill; under load the inputs that queued while the writers were busy go
//! together, which is when Postgres's fixed cost per statement (starting the
//! executor on its tables and their indexes, checking the tables'
//! constraints, committing) matters: 16 records of attempts in one
//! statement cost Postgres about a quarter of what 16 statements cost
//! (PERFORMANCE.md).
//!
//! A request goes on only with its own output, after the statement
//! committed (or failed, and then the request fails), so a batch never
//! acknowledges what it did not write. When a batch fails, each of its
//! inputs runs alone, so one input Postgres refuses fails only its own
//! request, with its own error.
//!
//! The statements run on a pool of generic plans: one made per connection,
//! where a custom plan for a statement of arrays would cost more to make
//! than the statement to run.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Inputs in one statement at most: past where the cost per input stops
/// falling, and a bound on one statement's size.
const MOST_PER_STATEMENT: usize = 64;
/// Statements in flight at once, per kind, at most: one slow statement does
/// not stop the others, and the pool keeps connections for everything
/// else. Never more than the pool's connections, so no writer waits for
/// another's connection while its inputs wait.
const MOST_WRITERS: u32 = 4;
/// Inputs waiting at most; a push waits for room beyond that.
const QUEUE: usize = 1024;

/// A statement that runs for any number of inputs at once.
pub trait Statement: Send + Sync + 'static {
    type Input: Send + Sync + 'static;
    type Output: Send + 'static;
    /// Runs once for `inputs`: one output per input, in their order.
    fn run(&self, db: &PgPool, inputs: &[Self::Input]) -> impl Future<Output = sqlx::Result<Vec<Self::Output>>> + Send;
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
    /// Starts the writers on the current runtime; they stop once every
    /// handle is dropped and the queue is empty.
    pub fn start(db: PgPool, statement: S) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let writers = db.options().get_max_connections().min(MOST_WRITERS) as usize;
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
        let (db, statement) = (db.clone(), statement.clone());
        tokio::spawn(async move {
            write_batch(&db, &*statement, batch).await;
            drop(writer);
        });
    }
}

async fn write_batch<S: Statement>(db: &PgPool, statement: &S, batch: Vec<(S::Input, Answer<S::Output>)>) {
    let (inputs, answers): (Vec<S::Input>, Vec<Answer<S::Output>>) = batch.into_iter().unzip();
    match statement.run(db, &inputs).await {
        // A push that stopped waiting is not told.
        Ok(outputs) => {
            for (answer, output) in answers.into_iter().zip(outputs) {
                let _ = answer.send(Ok(output));
            }
        }
        Err(error) if inputs.len() == 1 => {
            if let Some(answer) = answers.into_iter().next() {
                let _ = answer.send(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, inputs = inputs.len(), "a shared statement failed; running it for each input alone");
            for (input, answer) in inputs.iter().zip(answers) {
                let output = statement.run(db, std::slice::from_ref(input)).await.and_then(|mut outputs| {
                    outputs.pop().ok_or_else(|| sqlx::Error::Protocol("a statement gave no output".into()))
                });
                let _ = answer.send(output);
            }
        }
    }
}
