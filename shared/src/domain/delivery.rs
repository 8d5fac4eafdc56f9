//! A webhook delivery's state, as `webhook_deliveries.status` and
//! `delivery_attempts.outcome` store it (text columns with a CHECK) and the
//! API shows it: pending (not yet queued) → dispatched (its task exists) →
//! delivered | dead; a resend or recover starts a dead or delivered delivery
//! over as pending. Each attempt records an [`Outcome`], which gives the
//! delivery its status. Read and written through sqlx's type mapping
//! (`status AS "status: DeliveryStatus"`, enum binds), so Rust code never
//! compares the stored words.

use std::fmt;

use serde::{Deserialize, Serialize};

// No `///` on the type: utoipa would make it the OpenAPI schema's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Dispatched,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Dispatched, Self::Delivered, Self::Dead];

    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Dispatched => "dispatched",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Delivered or dead: nothing more is sent unless it is started over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Dead)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt came to, as recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt is scheduled.
    Retry,
    /// It failed and no attempt follows (the schedule is spent, or the
    /// agent's endpoint was disabled meanwhile).
    Dead,
    /// The receiver answered 410: its endpoint is disabled.
    Gone,
    /// Not sent: the target is not a public address (or unsendable).
    Refused,
}

impl Outcome {
    /// As stored and shown (and in the attempt's trace span).
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
    pub fn delivery_status(self) -> DeliveryStatus {
        match self {
            Self::Delivered => DeliveryStatus::Delivered,
            Self::Retry => DeliveryStatus::Dispatched,
            Self::Dead | Self::Gone | Self::Refused => DeliveryStatus::Dead,
        }
    }

    /// The delivery died with it.
    pub fn is_dead(self) -> bool {
        self.delivery_status() == DeliveryStatus::Dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` (logs, messages) and the serde and sqlx names (the API, the
    /// columns: both `lowercase`) must spell each value alike.
    #[test]
    fn every_spelling_of_a_status_or_outcome_agrees() {
        use DeliveryStatus::{Dead, Delivered, Dispatched, Pending};
        for status in [Pending, Dispatched, Delivered, Dead] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.as_str(), format!("{status:?}").to_lowercase());
        }
        for outcome in [Outcome::Delivered, Outcome::Retry, Outcome::Dead, Outcome::Gone, Outcome::Refused] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
            assert_eq!(outcome.as_str(), format!("{outcome:?}").to_lowercase());
        }
    }

    #[test]
    fn an_outcome_gives_the_delivery_its_status() {
        assert_eq!(Outcome::Delivered.delivery_status(), DeliveryStatus::Delivered);
        assert_eq!(Outcome::Retry.delivery_status(), DeliveryStatus::Dispatched);
        assert!(!Outcome::Retry.is_dead() && !Outcome::Delivered.is_dead());
        for dead in [Outcome::Dead, Outcome::Gone, Outcome::Refused] {
            assert_eq!(dead.delivery_status(), DeliveryStatus::Dead);
            assert!(dead.is_dead());
        }
        assert!(DeliveryStatus::Delivered.is_final() && DeliveryStatus::Dead.is_final());
        assert!(!DeliveryStatus::Pending.is_final() && !DeliveryStatus::Dispatched.is_final());
    }
}
