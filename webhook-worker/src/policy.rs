//! The delivery policy: every decision about an attempt, in one place and
//! free of I/O, so each branch is a unit test. The rest of the worker
//! gathers the facts (the lease, the send, the endpoint's run of failures)
//! and records or acts on what is decided here.
//!
//! After a send ([`Policy::after_send`]):
//! - 2xx: delivered.
//! - 410: gone; the agent's endpoint is disabled.
//! - refused by the SSRF policy (or unsendable): dead, never retried.
//! - any other failure: the next attempt after the schedule's step
//!   (`WEBHOOK_RETRY_SCHEDULE`, jittered ±20 %), or later when the receiver
//!   asked with `Retry-After` (up to the schedule's longest step); dead after
//!   the last step. A failure that ends a run of failures of the agent's
//!   endpoint longer than `ENDPOINT_DISABLE_AFTER_SECONDS` disables the
//!   endpoint, and the delivery dies with it.
//! - a failure saying the receiver is down or overloaded (no answer, 5xx,
//!   408, 429, or any `Retry-After`) paces its URL until the next attempt,
//!   but at most [`LONGEST_PACE`] unless the receiver asked for longer.
//!
//! Before a send ([`Policy::unsent`]): a disabled endpoint's delivery dies
//! unsent; a busy host or recipient (or a URL being probed) puts the attempt off 1 s,
//! doubling to a minute; a paced URL puts it off until the pacing ends
//! (plus 0.5–5 s, so the waiting deliveries do not arrive at once), or
//! kills it when that is past the delivery's whole schedule.
//!
//! A push holds its delivery, its recipient's and its host's send slots and
//! its URL's probe for
//! the send's timeout (`WEBHOOK_TIMEOUT_SECONDS`) and [`HOLD_MARGIN`].

use std::time::Duration;

use rand::Rng;
use shared::delivery_tasks::Push;
use shared::domain::Outcome;
use shared::retry_schedule::{self, RetrySchedule};
use shared::settings::Settings;
use time::OffsetDateTime;

use crate::health::{DisabledBecause, FailingRun};
use crate::next_attempt::Next;
use crate::send::Sent;

/// The longest a plain failure (no `Retry-After`) holds a URL back: a
/// delivery deep in its schedule must not keep a recovered endpoint's
/// other deliveries waiting for hours.
pub const LONGEST_PACE: Duration = Duration::from_secs(300);
/// A push's hold outlasts its send's timeout by this much.
pub const HOLD_MARGIN: Duration = Duration::from_secs(5);
/// A busy host is asked again after 1 s, doubling up to this.
const LONGEST_BUSY_WAIT: Duration = Duration::from_secs(60);

/// Why a delivery that waited on its URL for as long as its own schedule
/// lasts dies unsent.
pub const FAILING_ALL_SCHEDULE: &str = "the endpoint kept failing for the whole retry schedule; not sent";

pub struct Policy {
    schedule: RetrySchedule,
    send_timeout: Duration,
    disable_after: Duration,
}

/// Why an attempt is not sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The agent's endpoint is disabled.
    EndpointDisabled,
    /// All of the host's (or the recipient's) send slots are taken, or
    /// another delivery is probing the URL (its outcome is known within a
    /// send's timeout).
    Busy,
    /// The URL is paced until then.
    Paced(OffsetDateTime),
}

/// What becomes of an attempt not sent now.
#[derive(Debug)]
pub enum Unsent {
    /// The same attempt, later.
    Defer(Next),
    /// The delivery dies unsent, for this reason.
    Die(&'static str),
}

/// What a sent attempt came to.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    /// After a retryable failure: the next attempt.
    pub next: Option<Next>,
    /// The attempt's error: the send's, and why the delivery ended early.
    pub error: Option<String>,
    /// This attempt disables the agent's endpoint, for this reason.
    pub disable_endpoint: Option<DisabledBecause>,
    /// Nothing more goes to the URL before this (`None`: not paced by it).
    pub pace_until: Option<OffsetDateTime>,
}

impl Policy {
    pub fn new(schedule: RetrySchedule, send_timeout: Duration, disable_after: Duration) -> Self {
        Self { schedule, send_timeout, disable_after }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings.webhook_retry_schedule.clone(), settings.webhook_timeout, settings.endpoint_disable_after)
    }

    pub fn send_timeout(&self) -> Duration {
        self.send_timeout
    }

    /// How long a push holds its delivery, its send slots and its URL's
    /// probe: past this, its holder is taken for dead.
    pub fn hold(&self) -> Duration {
        self.send_timeout + HOLD_MARGIN
    }

    /// Attempt `attempt` of `push`'s delivery, not sent because of `why`:
    /// put off, or dead. `deferrals` counts the times it was put off already;
    /// `round_began` is when this round of sending began.
    pub fn unsent(
        &self,
        why: NotSent,
        push: &Push,
        attempt: i32,
        deferrals: i32,
        round_began: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Unsent {
        match why {
            NotSent::EndpointDisabled => Unsent::Die(shared::webhooks::ENDPOINT_DISABLED),
            NotSent::Busy => Unsent::Defer(Next::deferral(push, attempt, now + busy_wait(deferrals))),
            NotSent::Paced(until) => {
                let at = spread(until);
                // Waiting must not outlast the delivery's own schedule: a URL that
                // keeps failing would otherwise hold its later deliveries forever.
                if at > round_began.unwrap_or(now) + self.schedule.total() {
                    Unsent::Die(FAILING_ALL_SCHEDULE)
                } else {
                    Unsent::Defer(Next::deferral(push, attempt, at))
                }
            }
        }
    }

    /// What attempt `attempt` of `push`'s delivery came to, having been
    /// `sent`. `endpoint` is the agent endpoint's run of failures this
    /// failure extends (`None` for a success, a client's callback, or a URL
    /// that is no longer the agent's endpoint).
    pub fn after_send(
        &self,
        push: &Push,
        attempt: i32,
        sent: &Sent,
        endpoint: Option<FailingRun>,
        now: OffsetDateTime,
    ) -> Decision {
        let error = sent.error.clone();
        if sent.succeeded() {
            return Decision {
                outcome: Outcome::Delivered,
                next: None,
                error,
                disable_endpoint: None,
                pace_until: None,
            };
        }
        let (outcome, next) = match sent.status {
            Some(410) => (Outcome::Gone, None),
            _ if sent.refused => (Outcome::Refused, None),
            _ => match self.delay_after(attempt, sent.retry_after) {
                Some(delay) => (Outcome::Retry, Some(Next::retry(push, attempt + 1, now + delay))),
                None => (Outcome::Dead, None),
            },
        };
        let disable_endpoint = endpoint.filter(|run| !run.disabled).and_then(|run| {
            if outcome == Outcome::Gone {
                Some(DisabledBecause::Gone)
            } else {
                (now - run.since >= self.disable_after).then_some(DisabledBecause::Failing)
            }
        });
        let (outcome, next, error) = match (outcome, disable_endpoint) {
            // No point in another attempt: the endpoint gets nothing more.
            (Outcome::Retry, Some(_)) => {
                let error = format!("{}; {}", error.unwrap_or_default(), shared::webhooks::ENDPOINT_DISABLED);
                (Outcome::Dead, None, Some(error))
            }
            _ => (outcome, next, error),
        };
        let pace_until = paces(sent).then(|| {
            let next_at = next.as_ref().map_or(now, |next| next.at);
            next_at.min(now + sent.retry_after.unwrap_or_default().max(LONGEST_PACE))
        });
        Decision { outcome, next, error, disable_endpoint, pace_until }
    }

    /// The wait after failed attempt `attempt`: the step, jittered, but not
    /// before the receiver asked (`retry_after`, clamped to the longest
    /// step). `None` after the last attempt.
    fn delay_after(&self, attempt: i32, retry_after: Option<Duration>) -> Option<Duration> {
        let step = retry_schedule::jittered(self.schedule.step_after(attempt)?);
        Some(step.max(retry_after.unwrap_or_default().min(self.schedule.longest_step())))
    }
}

/// Whether a failed send says the receiver is down or overloaded (as
/// opposed to refusing this one webhook, say a 400 or 413, which must not
/// hold back its other deliveries).
fn paces(sent: &Sent) -> bool {
    match sent.status {
        None => !sent.refused,
        Some(status) => status >= 500 || status == 408 || status == 429 || sent.retry_after.is_some(),
    }
}

/// How long an attempt waits after finding its send slots busy for the
/// `deferrals`-th time: 1 s doubling to a minute, ±20 %.
fn busy_wait(deferrals: i32) -> Duration {
    let wait = Duration::from_secs(1 << deferrals.clamp(0, 6));
    retry_schedule::jittered(wait.min(LONGEST_BUSY_WAIT))
}

/// `at` plus 0.5–5 s, so deliveries that waited for one URL do not all
/// come back in the same instant.
fn spread(at: OffsetDateTime) -> OffsetDateTime {
    at + Duration::from_millis(rand::rng().random_range(500..=5000))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn policy(schedule: &str) -> Policy {
        Policy::new(schedule.parse().unwrap(), Duration::from_secs(10), 5 * DAY)
    }

    fn push() -> Push {
        Push { delivery_id: "dlv_9a8b7c6d5e4f40312a1b0c9d8e7f6a5b".parse().unwrap(), generation: 1, attempt: Some(1) }
    }

    fn sent(status: Option<u16>, retry_after: Option<u64>) -> Sent {
        let error = status.filter(|status| !(200..300).contains(status)).map(|status| format!("answered {status}"));
        Sent { status, body: None, error, retry_after: retry_after.map(Duration::from_secs), refused: false }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    /// Seconds from now until `at`.
    fn wait(at: OffsetDateTime) -> f64 {
        (at - now()).as_seconds_f64()
    }

    /// A run of failures of the agent's endpoint that began `ago`.
    fn failing_for(ago: Duration) -> Option<FailingRun> {
        Some(FailingRun { since: now() - ago, disabled: false })
    }

    #[test]
    fn a_success_is_delivered_and_ends_the_urls_pacing() {
        let decision = policy("10s").after_send(&push(), 1, &sent(Some(204), None), None, now());
        assert_eq!(decision.outcome, Outcome::Delivered);
        assert!(decision.next.is_none() && decision.error.is_none() && decision.disable_endpoint.is_none());
        assert_eq!(decision.pace_until, None);
    }

    #[test]
    fn a_failure_is_retried_after_the_jittered_step() {
        let decision = policy("10s,1h").after_send(&push(), 1, &sent(Some(500), None), failing_for(DAY), now());
        assert_eq!(decision.outcome, Outcome::Retry);
        assert_eq!(decision.error.as_deref(), Some("answered 500"));
        let next = decision.next.unwrap();
        assert_eq!((next.push.attempt, next.task_name.as_str()), (Some(2), "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b-1-2"));
        assert!((8.0..=12.0).contains(&wait(next.at)), "10 s ± 20 %: {}", wait(next.at));
        assert_eq!(decision.pace_until, Some(next.at), "a 5xx paces the URL until the next attempt");
        assert_eq!(decision.disable_endpoint, None, "failing for a day, not five");
    }

    #[test]
    fn a_retry_after_shorter_than_the_step_changes_nothing() {
        let decision = policy("1h").after_send(&push(), 1, &sent(Some(429), Some(60)), None, now());
        let next = decision.next.unwrap();
        assert!((2880.0..=4320.0).contains(&wait(next.at)), "the step: {}", wait(next.at));
        assert_eq!(wait(decision.pace_until.unwrap()), 300.0, "a plain failure paces for five minutes at most");
    }

    #[test]
    fn a_retry_after_longer_than_the_step_delays_the_attempt_up_to_the_longest_step() {
        let asked = policy("10s,1h").after_send(&push(), 1, &sent(Some(429), Some(600)), None, now());
        assert_eq!(asked.outcome, Outcome::Retry);
        let at = asked.next.unwrap().at;
        assert_eq!(wait(at), 600.0, "as the receiver asked");
        assert_eq!(asked.pace_until, Some(at), "and the URL waits as long");

        let clamped = policy("10s,1h").after_send(&push(), 1, &sent(Some(503), Some(86_400)), None, now());
        assert_eq!(wait(clamped.next.unwrap().at), 3600.0, "clamped to the longest step");
    }

    #[test]
    fn the_last_attempt_failing_kills_the_delivery() {
        let policy = policy("10s,1h");
        let decision = policy.after_send(&push(), 3, &sent(None, None), None, now());
        assert_eq!(decision.outcome, Outcome::Dead, "three attempts in all");
        assert!(decision.next.is_none());
        assert_eq!(decision.pace_until, Some(now()), "no answer paces the URL, without a next attempt to wait for");
        assert_eq!(policy.after_send(&push(), 2, &sent(None, None), None, now()).outcome, Outcome::Retry);
    }

    #[test]
    fn gone_kills_the_delivery_and_disables_the_endpoint() {
        let decision = policy("10s").after_send(&push(), 1, &sent(Some(410), None), failing_for(Duration::ZERO), now());
        assert_eq!(decision.outcome, Outcome::Gone);
        assert!(decision.next.is_none());
        assert_eq!(decision.disable_endpoint, Some(DisabledBecause::Gone));
        assert_eq!(decision.pace_until, None, "a 410 is an answer, not an outage");

        let callback = policy("10s").after_send(&push(), 1, &sent(Some(410), None), None, now());
        assert_eq!((callback.outcome, callback.disable_endpoint), (Outcome::Gone, None), "no endpoint to disable");
        let disabled = Some(FailingRun { since: now(), disabled: true });
        let again = policy("10s").after_send(&push(), 1, &sent(Some(410), None), disabled, now());
        assert_eq!(again.disable_endpoint, None, "disabled already");
    }

    #[test]
    fn failing_for_longer_than_the_limit_disables_the_endpoint_and_kills_the_delivery() {
        let decision = policy("10s").after_send(&push(), 1, &sent(Some(500), None), failing_for(5 * DAY), now());
        assert_eq!(decision.outcome, Outcome::Dead, "not retried: the endpoint gets nothing more");
        assert!(decision.next.is_none());
        assert_eq!(decision.disable_endpoint, Some(DisabledBecause::Failing));
        assert_eq!(decision.error.as_deref(), Some("answered 500; the agent's endpoint is disabled"));

        let spent = policy("10s").after_send(&push(), 2, &sent(Some(500), None), failing_for(6 * DAY), now());
        assert_eq!((spent.outcome, spent.error.as_deref()), (Outcome::Dead, Some("answered 500")));
        assert_eq!(spent.disable_endpoint, Some(DisabledBecause::Failing));
    }

    #[test]
    fn a_refused_target_dies_without_pacing() {
        let refused = Sent { refused: true, ..sent(None, None) };
        let decision = policy("10s").after_send(&push(), 1, &refused, None, now());
        assert_eq!((decision.outcome, decision.pace_until), (Outcome::Refused, None));
        assert!(decision.next.is_none());
    }

    #[test]
    fn only_a_receiver_that_is_down_or_overloaded_paces_its_url() {
        for pacing in [sent(None, None), sent(Some(503), None), sent(Some(429), None), sent(Some(408), None)] {
            assert!(paces(&pacing));
        }
        assert!(paces(&sent(Some(400), Some(60))), "it asked us to wait");
        assert!(!paces(&sent(Some(400), None)), "one bad webhook holds no other back");
        assert!(!paces(&sent(Some(413), None)));
        assert!(!paces(&Sent { refused: true, ..sent(None, None) }), "a refused address is not the receiver's state");
    }

    #[test]
    fn a_disabled_endpoints_delivery_dies_unsent() {
        let unsent = policy("10s").unsent(NotSent::EndpointDisabled, &push(), 1, 0, None, now());
        assert!(matches!(unsent, Unsent::Die(why) if why == shared::webhooks::ENDPOINT_DISABLED), "{unsent:?}");
    }

    #[test]
    fn a_busy_host_is_asked_again_less_and_less_often() {
        let waits: Vec<f64> = (0..9)
            .map(|deferrals| match policy("10s").unsent(NotSent::Busy, &push(), 1, deferrals, None, now()) {
                Unsent::Defer(next) => {
                    assert_eq!(next.push.attempt, Some(1), "the same attempt");
                    wait(next.at)
                }
                Unsent::Die(why) => panic!("{why}"),
            })
            .collect();
        assert!((0.8..=1.2).contains(&waits[0]), "{waits:?}");
        assert!((3.2..=4.8).contains(&waits[2]), "{waits:?}");
        assert!(waits[6..].iter().all(|wait| (48.0..=72.0).contains(wait)), "at most a minute: {waits:?}");
    }

    #[test]
    fn a_paced_url_puts_the_attempt_off_until_its_pacing_ends_within_the_schedule() {
        let policy = policy("1m,1m");
        let paced = NotSent::Paced(now() + Duration::from_secs(60));
        match policy.unsent(paced, &push(), 1, 0, Some(now()), now()) {
            Unsent::Defer(next) => {
                assert!((60.5..=65.0).contains(&wait(next.at)), "spread a little: {}", wait(next.at));
                assert_eq!(next.task_name, push().task_name(Some(next.at)), "a deferral's own name");
            }
            Unsent::Die(why) => panic!("{why}"),
        }
        let round_began = now() - Duration::from_secs(100);
        let unsent = policy.unsent(paced, &push(), 1, 0, Some(round_began), now());
        assert!(matches!(unsent, Unsent::Die(FAILING_ALL_SCHEDULE)), "past the round's two minutes: {unsent:?}");
    }

    #[test]
    fn a_push_holds_its_delivery_for_the_send_and_some() {
        assert_eq!(policy("10s").hold(), Duration::from_secs(15));
    }
}
