//! What both services need: domain types that parse (not validate) input,
//! one settings type, telemetry set-up and the database migrations.
//! No HTTP framework types in the domain; `serve` runs an axum router the
//! way Cloud Run stops it.

pub mod batches;
pub mod db;
pub mod delivery_tasks;
pub mod domain;
pub mod egress;
pub mod error_chain;
pub mod events;
pub mod platform_key;
pub mod progress;
pub mod redis;
pub mod redrive;
pub mod retry_schedule;
pub mod sealing;
pub mod serve;
pub mod settings;
pub mod signing;
pub mod telemetry;
pub mod tls;
pub mod webhooks;
