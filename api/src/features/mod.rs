//! The API's resources, one module each, each with its own `router()`
//! (merged in `startup`). A feature imports [`crate::http`],
//! [`crate::resources`] and [`crate::outbox`], never a background task. A
//! feature may use another's items one way only: jobs and ratings write
//! [`receipts`], agents and clients implement [`key_rotation`], agent cards
//! read what [`agents`] imported from an agent's own card. The [`console`]
//! serves static files and imports no other feature.

pub mod agent_cards;
pub mod agents;
pub mod clients;
pub mod console;
pub mod deliveries;
pub mod discovery;
pub mod jobs;
pub mod jwks;
pub mod key_rotation;
pub mod ratings;
pub mod receipts;
