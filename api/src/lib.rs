//! The public agent-registry API, in layers. A module imports from its own
//! layer and the layers listed before it, never from one listed after it:
//!
//! 1. [`outbox`]: the transactional outbox every state change writes its
//!    deliveries through, and the signal that wakes its readers.
//! 2. [`http`]: the plumbing every route uses: errors, extractors, the
//!    signed-request check, rate limits, cursors, the page cache, the
//!    platform's signing keys, the OpenAPI document, health, and the
//!    state handlers reach.
//! 3. [`resources`]: what several features share: an agent and a job as
//!    stored and shown, found by id, and pages of an agent's public records.
//! 4. [`features`]: one module per resource, each with its own `router()`.
//! 5. [`background`]: the tasks that run beside the server.
//! 6. [`startup`]: merges the routers and runs the server and the tasks.
//!
//! Within a layer, imports go one way only: no module imports a module
//! that imports it back.

pub mod background;
pub mod features;
pub mod http;
pub mod outbox;
pub mod resources;
pub mod startup;
