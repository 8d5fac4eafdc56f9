//! What both services need: domain types that parse (not validate) input,
//! one settings type, telemetry set-up and the database migrations.
//! No HTTP framework types live here.

pub mod db;
pub mod domain;
pub mod settings;
pub mod signing;
pub mod telemetry;
