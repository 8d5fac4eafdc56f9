//! The public agent-registry API: one module per feature, each with its own
//! `router()`, merged in [`startup`].

pub mod background;
pub mod features;
pub mod http;
pub mod outbox;
pub mod startup;
