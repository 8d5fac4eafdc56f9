//! What follows an attempt: its outcome and, after a retryable failure, the
//! next attempt, which the worker schedules itself as a new Cloud Tasks task
//! (`WEBHOOK_RETRY_SCHEDULE`, jittered; a receiver's `Retry-After` delays
//! that delivery only, up to the schedule's longest step). Cloud Tasks' own
//! retries are left for the worker's faults.

use shared::delivery_tasks::Push;
use shared::retry_schedule::RetrySchedule;
use time::OffsetDateTime;

use crate::send::Sent;

/// What one attempt came to, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retry,
    Dead,
    Gone,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Dead => "dead",
            Self::Gone => "gone",
            Self::Refused => "refused",
        }
    }

    /// The delivery's status after it.
    pub fn delivery_status(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "dispatched",
            Self::Dead | Self::Gone | Self::Refused => "dead",
        }
    }

    pub fn is_dead(self) -> bool {
        self.delivery_status() == "dead"
    }
}

/// The next attempt of a delivery: its push, its task and when it runs.
#[derive(Debug, Clone)]
pub struct Next {
    pub push: Push,
    pub task_name: String,
    pub at: OffsetDateTime,
}

impl Next {
    /// Attempt `attempt` of `push`'s delivery, at `at`; `deferred` when it
    /// is the same attempt again later (its task then needs a name of its own).
    pub fn new(push: &Push, attempt: i32, at: OffsetDateTime, deferred: bool) -> Self {
        let push = Push { attempt: Some(attempt), ..*push };
        let task_name = push.task_name(deferred.then_some(at));
        Self { push, task_name, at }
    }
}

/// The outcome of attempt `attempt` and, when it is to be retried, the next.
pub fn after_attempt(sent: &Sent, push: &Push, attempt: i32, schedule: &RetrySchedule) -> (Outcome, Option<Next>) {
    match sent.status {
        Some(status) if (200..300).contains(&status) => return (Outcome::Delivered, None),
        Some(410) => return (Outcome::Gone, None),
        _ if sent.refused => return (Outcome::Refused, None),
        _ => {}
    }
    match schedule.delay_after(attempt, sent.retry_after) {
        Some(delay) => (Outcome::Retry, Some(Next::new(push, attempt + 1, OffsetDateTime::now_utc() + delay, false))),
        None => (Outcome::Dead, None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sent(status: Option<u16>, retry_after: Option<u64>) -> Sent {
        Sent { status, body: None, error: None, retry_after: retry_after.map(Duration::from_secs), refused: false }
    }

    fn push() -> Push {
        Push { delivery_id: "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b".parse().unwrap(), generation: 1, attempt: Some(1) }
    }

    #[test]
    fn failures_are_retried_on_schedule_until_the_last_attempt() {
        let schedule: RetrySchedule = "10s,1h".parse().unwrap();
        let (outcome, next) = after_attempt(&sent(Some(500), None), &push(), 1, &schedule);
        let next = next.unwrap();
        assert_eq!(outcome, Outcome::Retry);
        assert_eq!(next.push.attempt, Some(2));
        assert_eq!(next.task_name, "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-1-2");
        let wait = (next.at - OffsetDateTime::now_utc()).as_seconds_f64();
        assert!((7.0..=12.1).contains(&wait), "10 s ± 20 %: {wait}");
        assert_eq!(after_attempt(&sent(None, None), &push(), 3, &schedule).0, Outcome::Dead, "3 attempts in all");
    }

    #[test]
    fn a_receivers_retry_after_delays_its_next_attempt() {
        let schedule: RetrySchedule = "10s,1h".parse().unwrap();
        let (outcome, next) = after_attempt(&sent(Some(429), Some(3600)), &push(), 1, &schedule);
        assert_eq!(outcome, Outcome::Retry);
        let wait = (next.unwrap().at - OffsetDateTime::now_utc()).as_seconds_f64();
        assert!((3590.0..=3600.0).contains(&wait), "{wait}");
    }

    #[test]
    fn success_gone_and_refused_end_the_delivery() {
        let schedule: RetrySchedule = "10s".parse().unwrap();
        assert_eq!(after_attempt(&sent(Some(204), None), &push(), 1, &schedule).0, Outcome::Delivered);
        assert_eq!(after_attempt(&sent(Some(410), None), &push(), 1, &schedule).0, Outcome::Gone);
        let refused = Sent { refused: true, ..sent(None, None) };
        assert_eq!(after_attempt(&refused, &push(), 1, &schedule).0, Outcome::Refused);
    }
}
