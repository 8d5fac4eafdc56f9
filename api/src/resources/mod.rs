//! What several features share about the resources they serve: an agent
//! and a job as stored and as they are shown, found by id, with their
//! not-found answers, and pages of an agent's public records. Imports
//! [`crate::http`] and [`crate::outbox`]; no feature, no background task.

pub mod agent;
pub mod job;
pub mod paging;
