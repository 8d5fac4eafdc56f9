pub mod expiry;
pub mod maintenance;
pub mod publisher;
pub mod relay;
pub mod reputation;
pub mod retention;
pub mod singleton;
