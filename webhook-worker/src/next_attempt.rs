//! A delivery's next attempt as a Cloud Tasks task: which push it carries,
//! its name and when it runs, and the one function that creates it
//! ([`Next::enqueue`]). A retry is the following attempt; a deferral (the
//! URL is paced, its host busy) is the same attempt later, under a name of
//! its own. When it runs is `policy`'s decision.

use shared::delivery_tasks::{DeliveryTasks, Push};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Next {
    pub push: Push,
    pub task_name: String,
    pub at: OffsetDateTime,
}

impl Next {
    /// Attempt `attempt` of `push`'s delivery, at `at`, as its first task.
    pub fn retry(push: &Push, attempt: i32, at: OffsetDateTime) -> Self {
        let push = Push { attempt: Some(attempt), ..*push };
        Self { task_name: push.task_name(None), push, at }
    }

    /// Attempt `attempt` of `push`'s delivery put off to `at`.
    pub fn deferral(push: &Push, attempt: i32, at: OffsetDateTime) -> Self {
        let push = Push { attempt: Some(attempt), ..*push };
        Self { task_name: push.task_name(Some(at)), push, at }
    }

    /// The task recorded already for attempt `attempt`, named `task_name`:
    /// created again when the worker may have died before creating it.
    pub fn recorded(push: &Push, attempt: i32, task_name: String, at: Option<OffsetDateTime>) -> Self {
        let push = Push { attempt: Some(attempt), ..*push };
        Self { push, task_name, at: at.unwrap_or_else(OffsetDateTime::now_utc) }
    }

    /// Creates the task, continuing the trace `traceparent` (creating it
    /// twice is harmless: the name deduplicates). Only after the attempt or
    /// deferral that named it is recorded, so a push always finds its row.
    pub async fn enqueue(&self, tasks: &DeliveryTasks, traceparent: Option<String>) -> anyhow::Result<()> {
        tasks.create(&self.task_name, &self.push, Some(self.at), traceparent).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Push {
        Push { delivery_id: "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b".parse().unwrap(), generation: 1, attempt: Some(1) }
    }

    #[test]
    fn a_retry_is_the_next_attempt_and_a_deferral_the_same_one_under_its_own_name() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let retry = Next::retry(&push(), 2, at);
        assert_eq!((retry.push.attempt, retry.task_name.as_str()), (Some(2), "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-1-2"));
        let deferral = Next::deferral(&push(), 1, at);
        assert_eq!(deferral.push.attempt, Some(1));
        assert_eq!(deferral.task_name, "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-1-1-at1800000000000");
        let recorded = Next::recorded(&push(), 2, retry.task_name.clone(), Some(at));
        assert_eq!((recorded.push.attempt, recorded.task_name, recorded.at), (Some(2), retry.task_name, at));
    }
}
