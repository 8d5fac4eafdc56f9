//! The public agent-registry API: one module per feature, each with its own
//! `router()`, merged in [`startup`].

pub mod agent_cards;
pub mod agents;
pub mod auth;
pub mod clients;
pub mod cursor;
pub mod deliveries;
pub mod discovery;
pub mod error;
pub mod expiry;
pub mod extract;
pub mod health;
pub mod jobs;
pub mod key_rotation;
pub mod maintenance;
pub mod openapi;
pub mod outbox;
pub mod page_cache;
pub mod platform_keys;
pub mod publisher;
pub mod rate_limit;
pub mod ratings;
pub mod receipts;
pub mod relay;
pub mod reputation;
pub mod retention;
pub mod singleton;
pub mod startup;
pub mod state;
