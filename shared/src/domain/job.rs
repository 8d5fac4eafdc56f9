//! The job state machine: pending → accepted → completed | failed, and
//! cancelled / expired. Illegal moves are refused in the database too (each
//! transition is an `UPDATE … WHERE status = ANY(allowed sources)`), and so
//! are moves after their window passed ([`JobWindow`]): a job not accepted
//! by its `accept_by`, or not completed by its `deadline`, expires.

use std::fmt;
use std::str::FromStr;

use super::{ParseError, serde_via_str};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Pending,
    Accepted,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

impl JobStatus {
    pub const ALL: [Self; 6] =
        [Self::Pending, Self::Accepted, Self::Completed, Self::Failed, Self::Cancelled, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

impl FromStr for JobStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseError::new("must be pending, accepted, completed, failed, cancelled or expired"))
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
serde_via_str!(JobStatus, "a job status");

/// A time limit on a job: while the job is in [`JobWindow::status`], the
/// window must not have passed for it to move on; once it passes, the job
/// expires (and says which window passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobWindow {
    /// `accept_by`, for a pending job.
    AcceptWindow,
    /// `deadline`, for an accepted job.
    Deadline,
}

impl JobWindow {
    pub const ALL: [Self; 2] = [Self::AcceptWindow, Self::Deadline];

    /// As stored in `jobs.expired_because` and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcceptWindow => "accept_window",
            Self::Deadline => "deadline",
        }
    }

    /// The status the window applies to.
    pub fn status(self) -> JobStatus {
        match self {
            Self::AcceptWindow => JobStatus::Pending,
            Self::Deadline => JobStatus::Accepted,
        }
    }

    /// For people: "accept window", "deadline".
    pub fn describe(self) -> &'static str {
        match self {
            Self::AcceptWindow => "accept window",
            Self::Deadline => "deadline",
        }
    }
}

impl FromStr for JobWindow {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|window| window.as_str() == s)
            .ok_or_else(|| ParseError::new("must be accept_window or deadline"))
    }
}

impl fmt::Display for JobWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
serde_via_str!(JobWindow, "a job window");

/// What a party may do to a job, and what it moves the job between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTransition {
    Accept,
    Complete,
    Fail,
    Cancel,
}

impl JobTransition {
    /// The statuses this transition may start from.
    pub fn from(self) -> &'static [JobStatus] {
        match self {
            Self::Accept => &[JobStatus::Pending],
            Self::Complete => &[JobStatus::Accepted],
            Self::Fail => &[JobStatus::Pending, JobStatus::Accepted],
            Self::Cancel => &[JobStatus::Pending, JobStatus::Accepted],
        }
    }

    pub fn to(self) -> JobStatus {
        match self {
            Self::Accept => JobStatus::Accepted,
            Self::Complete => JobStatus::Completed,
            Self::Fail => JobStatus::Failed,
            Self::Cancel => JobStatus::Cancelled,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
        }
    }

    /// The event type it emits.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Accept => "job.accepted",
            Self::Complete => "job.completed",
            Self::Fail => "job.failed",
            Self::Cancel => "job.cancelled",
        }
    }

    /// The window that must not have passed for this move: accepting needs
    /// the accept window open, completing the deadline not passed. Failing
    /// and cancelling end the job, so they stay allowed until it expires.
    pub fn window(self) -> Option<JobWindow> {
        match self {
            Self::Accept => Some(JobWindow::AcceptWindow),
            Self::Complete => Some(JobWindow::Deadline),
            Self::Fail | Self::Cancel => None,
        }
    }

    /// Only the agent moves work forward; only the client cancels.
    pub fn by_agent(self) -> bool {
        !matches!(self, Self::Cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
        }
        assert!("done".parse::<JobStatus>().is_err());
    }

    #[test]
    fn windows_round_trip_and_guard_the_moves_out_of_their_status() {
        for window in JobWindow::ALL {
            assert_eq!(window.as_str().parse::<JobWindow>().unwrap(), window);
        }
        assert!("late".parse::<JobWindow>().is_err());
        for transition in [JobTransition::Accept, JobTransition::Complete, JobTransition::Fail, JobTransition::Cancel] {
            if let Some(window) = transition.window() {
                assert_eq!(transition.from(), [window.status()], "{transition:?} moves out of its window's status");
            }
        }
    }

    #[test]
    fn finished_jobs_cannot_move() {
        for transition in [JobTransition::Accept, JobTransition::Complete, JobTransition::Fail, JobTransition::Cancel] {
            for done in [JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled, JobStatus::Expired] {
                assert!(!transition.from().contains(&done), "{transition:?} from {done}");
            }
        }
    }
}
