//! The tasks that run beside the HTTP server, started and stopped by
//! `startup`: the [`relay`] (deliveries to Cloud Tasks), the [`publisher`]
//! (events to Pub/Sub), job [`expiry`], [`maintenance`] (its sweeps,
//! [`retention`] and [`reputation`]) and, with a read replica, its
//! [`replica_lag`]. The publisher, expiry and maintenance
//! run on one instance at a time, through a [`singleton`] lease; the relay
//! and the publisher pace their rounds with [`rounds`]. They may import
//! every layer below them; no feature imports them.

pub mod expiry;
pub mod maintenance;
pub mod publisher;
pub mod relay;
pub mod replica_lag;
pub mod reputation;
pub mod retention;
pub mod rounds;
pub mod singleton;
