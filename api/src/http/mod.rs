//! The plumbing every route uses, and nothing about any one resource. It
//! imports only `shared` and [`crate::outbox`] (whose signal [`state`]
//! holds); its own modules build on each other in this order, never back:
//! [`error`] first, then [`cursor`], [`page_cache`], [`path_id`],
//! [`principal`], [`known_keys`], [`platform_keys`], [`replica`]; [`state`] holds those;
//! [`rate_limit`], [`extract`], [`auth`] and [`health`] read it; [`openapi`]
//! stands alone (the features' closed sets are handed to it).

pub mod auth;
pub mod cursor;
pub mod error;
pub mod extract;
pub mod health;
pub mod known_keys;
pub mod openapi;
pub mod page_cache;
pub mod path_id;
pub mod platform_keys;
pub mod principal;
pub mod rate_limit;
pub mod replica;
pub mod state;
