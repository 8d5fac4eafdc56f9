//! The webhook worker: Cloud Tasks pushes a delivery id; the worker leases
//! the delivery, paces its target, sends it as a signed Standard Webhook
//! through the SSRF-safe [`shared::egress`] client, records the attempt and, after a
//! failure, schedules the next attempt itself (`push` is the map; `policy`
//! decides what each attempt comes to).
//!
//! Modules only look down: `startup` (wiring) → `state` and `push` (one
//! push, orchestrated) → `record` (writes an attempt) → `attempts` (the
//! statement, shared by concurrent pushes through `shared::batches`, as
//! `lease`'s is); `record` → `policy` (decides) → `health`,
//! `next_attempt`, `send`; `push` also uses `lease`, `pacing`,
//! `slots` and `push_auth` (→ `google_keys`).

mod attempts;
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
