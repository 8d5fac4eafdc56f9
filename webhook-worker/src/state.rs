//! What every push handler shares: the pools and clients `startup` builds,
//! and the delivery policy. Below the handlers, so they and `startup` both
//! look down on it.

use std::sync::Arc;

use shared::batches::Batched;
use shared::delivery_tasks::DeliveryTasks;
use shared::egress::EgressClient;
use shared::sealing::Sealer;
use sqlx::PgPool;

use crate::attempts::Successes;
use crate::lease::Leases;
use crate::policy::Policy;
use crate::push_auth::PushAuth;
use crate::slots::Slots;

#[derive(Clone)]
pub struct WorkerState {
    /// Every statement here finds its rows by key: generic plans, made once
    /// per connection (the shared statements' would cost more to plan than
    /// to run).
    pub db: PgPool,
    /// Leases taken for concurrent pushes together (on `db`).
    pub leases: Batched<Leases>,
    /// Successes recorded for concurrent pushes together (on `db`).
    pub successes: Batched<Successes>,
    pub egress: EgressClient,
    /// Where the next attempts (and deferrals) go.
    pub tasks: DeliveryTasks,
    pub slots: Arc<Slots>,
    /// Who may push: Cloud Tasks' OIDC token, or the local shared secret.
    pub push_auth: Arc<PushAuth>,
    /// Opens the webhook secrets the worker signs with.
    pub sealer: Arc<Sealer>,
    /// What each attempt comes to, and when the next one runs.
    pub policy: Arc<Policy>,
}
