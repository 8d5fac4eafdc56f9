//! The webhook retry schedule (`WEBHOOK_RETRY_SCHEDULE`): the delays between
//! a delivery's attempts, as the setting gives them. A delivery gets one
//! attempt more than the schedule has steps. The worker's `policy` module
//! decides from it (jittered by [`jittered`], with the receiver's
//! `Retry-After`); this module only parses and reads the steps.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

/// Cloud Tasks schedules a task at most 30 days ahead; a step's jitter
/// (+20 %) must stay within that.
pub const LONGEST_STEP: Duration = Duration::from_secs(25 * 24 * 3600);
/// More steps than anyone needs; bounds what one delivery can cost.
const MOST_STEPS: usize = 50;
/// ±20 %.
const JITTER: f64 = 0.2;

#[derive(Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    steps: Vec<Duration>,
}

impl RetrySchedule {
    /// The longest step: no receiver's `Retry-After` delays a delivery longer.
    pub fn longest_step(&self) -> Duration {
        self.steps.iter().copied().max().unwrap_or_default()
    }

    /// The whole schedule, first attempt to last, unjittered.
    pub fn total(&self) -> Duration {
        self.steps.iter().sum()
    }

    /// The step after failed attempt `attempt` (1-based), unjittered; `None`
    /// after the last attempt.
    pub fn step_after(&self, attempt: i32) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.steps.get(index).copied()
    }
}

/// `delay` moved by up to ±20 %, so the retries of deliveries that failed
/// together do not arrive together again.
pub fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random_range(1.0 - JITTER..=1.0 + JITTER))
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// `5s,30s,5m,30m,2h,5h,10h,10h`: comma-separated durations (`ms`, `s`,
    /// `m`, `h`, `d` units).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let steps = s
            .split(',')
            .map(|step| {
                let step = step.trim();
                let delay = humantime::parse_duration(step).map_err(|e| format!("step {step:?}: {e}"))?;
                if delay.is_zero() || delay > LONGEST_STEP {
                    return Err(format!(
                        "step {step:?} must be above 0 and at most 25 days (Cloud Tasks schedules 30 days ahead, jitter adds 20 %)"
                    ));
                }
                Ok(delay)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps.len() > MOST_STEPS {
            return Err(format!("at most {MOST_STEPS} steps, got {}", steps.len()));
        }
        Ok(Self { steps })
    }
}

impl fmt::Debug for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(|step| humantime::format_duration(*step).to_string()).collect();
        write!(f, "RetrySchedule({})", steps.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_lasts_about_28_hours_in_nine_attempts() {
        let schedule: RetrySchedule = "5s,30s,5m,30m,2h,5h,10h,10h".parse().unwrap();
        let total: Duration = (1..=8).filter_map(|attempt| schedule.step_after(attempt)).sum();
        assert_eq!(total.as_secs(), 5 + 30 + 300 + 1800 + 7200 + 18000 + 36000 + 36000);
        assert_eq!(schedule.total(), total);
        assert_eq!(schedule.step_after(9), None, "the last attempt has no next");
        assert_eq!(schedule.longest_step(), Duration::from_secs(36000));
    }

    #[test]
    fn delays_are_jittered_within_a_fifth() {
        let delays: Vec<Duration> = (0..200).map(|_| jittered(Duration::from_secs(100))).collect();
        assert!(delays.iter().all(|delay| (80.0..=120.0).contains(&delay.as_secs_f64())), "{delays:?}");
        assert!(
            delays.iter().any(|delay| delay.as_secs_f64() < 95.0) && delays.iter().any(|d| d.as_secs_f64() > 105.0)
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_the_step_named() {
        for bad in ["", "5s,,5m", "0s", "26d", "five", "5s,-1s"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad:?}");
        }
        let err = "5s,soon".parse::<RetrySchedule>().unwrap_err();
        assert!(err.contains("soon"), "{err}");
        assert!(vec!["1s"; 51].join(",").parse::<RetrySchedule>().is_err());
    }
}
