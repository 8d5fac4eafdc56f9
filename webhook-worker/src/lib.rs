//! The webhook worker: Cloud Tasks pushes a delivery id, the worker loads the
//! delivery and delivers it as a signed Standard Webhook.

pub mod egress;
