//! One integration-test binary (one link step) for the API; a module per feature.

mod agent_cards;
mod agents;
mod console;
mod contract;
mod cors;
mod deliveries;
mod discovery;
mod events;
mod expiry;
mod generated_client;
mod health;
mod jobs;
mod keys;
mod liveness;
mod pipeline;
mod rate_limits;
mod ratings;
mod receipt_privacy;
mod receipts;
mod replica;
mod reputation;
mod secrets_at_rest;
mod side_by_side;
mod signatures;
mod validation;
mod worker_auth;
