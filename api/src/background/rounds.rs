//! The pace of the relay's and the publisher's rounds over the outbox.

use shared::error_chain::Causes;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// The shortest time between two relay or publisher rounds that were not
/// full. Under load a round then takes what many requests wrote, instead of
/// one round (and its statements) per request; an idle system's first write
/// is taken at once.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// How the relay and the publisher wait after a round: `full` (more is
/// waiting) goes on at once; `Ok(false)` waits for a wake (a commit) or
/// `poll`, but at least [`BATCH_WINDOW`]; a failure waits `retry` whatever
/// wakes it, so an outage does not turn every write into a round of failing
/// calls. False once `stopping` turns true.
pub async fn wait_for_next_round(
    round: &anyhow::Result<bool>,
    woken: impl Future<Output = ()>,
    poll: Duration,
    retry: Duration,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let pause = match round {
        Ok(true) => return !*stopping.borrow(),
        Ok(false) => BATCH_WINDOW,
        Err(_) => retry,
    };
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = stopping.wait_for(|stopping| *stopping) => return false,
    }
    if round.is_err() {
        return true;
    }
    tokio::select! {
        () = woken => true,
        () = tokio::time::sleep(poll.saturating_sub(BATCH_WINDOW)) => true,
        _ = stopping.wait_for(|stopping| *stopping) => false,
    }
}

/// The result of one relay or publisher round that handled `done` rows:
/// an error only when nothing went through, so a partial outage still
/// makes progress (and is logged).
pub fn round_result(done: usize, failure: Option<anyhow::Error>, what: &str) -> anyhow::Result<usize> {
    match failure {
        Some(error) if done == 0 => Err(error.context(what.to_owned())),
        Some(error) => {
            tracing::warn!(error = %Causes(&*error), done, "some {what}");
            Ok(done)
        }
        None => Ok(done),
    }
}
