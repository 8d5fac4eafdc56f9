//! One integration-test binary (one link step) for the API; a module per feature.

mod agents;
mod deliveries;
mod discovery;
mod events;
mod expiry;
mod health;
mod jobs;
mod pipeline;
mod rate_limits;
mod signatures;
mod validation;
