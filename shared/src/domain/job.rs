//! The job state machine: pending → accepted → completed | failed, and
//! cancelled / expired. Illegal moves are refused in the database too (each
//! transition is an `UPDATE … WHERE status = ANY(allowed sources)`).

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
    fn finished_jobs_cannot_move() {
        for transition in [JobTransition::Accept, JobTransition::Complete, JobTransition::Fail, JobTransition::Cancel] {
            for done in [JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled, JobStatus::Expired] {
                assert!(!transition.from().contains(&done), "{transition:?} from {done}");
            }
        }
    }
}
