//! The webhook worker: Cloud Tasks pushes a delivery id; the worker leases
//! the delivery, paces its target, sends it as a signed Standard Webhook
//! through the SSRF-safe [`shared::egress`] client, records the attempt and, after a
//! failure, schedules the next attempt itself (`push` is the map).

mod google_keys;
mod health;
mod lease;
mod next_attempt;
mod pacing;
mod policy;
mod push;
mod push_auth;
mod record;
mod send;
mod slots;
pub mod startup;
mod state;
