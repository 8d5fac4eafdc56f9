//! One integration-test binary (one link step) for the API; a module per feature.

mod agent_cards;
mod agents;
mod contract;
mod cors;
mod deliveries;
mod discovery;
mod events;
mod expiry;
mod health;
mod jobs;
mod liveness;
mod pipeline;
mod rate_limits;
mod ratings;
mod receipts;
mod signatures;
mod validation;
