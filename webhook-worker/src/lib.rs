//! The webhook worker: Cloud Tasks pushes a delivery id; the worker loads
//! the delivery and sends it as a signed Standard Webhook through the
//! SSRF-safe [`egress`] client, records the attempt, and answers so that
//! Cloud Tasks retries exactly what should be retried.

mod deliver;
pub mod egress;
pub mod startup;
