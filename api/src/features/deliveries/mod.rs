//! Webhook deliveries as their recipients see them: listings with each
//! delivery's newest attempts ([`listing`]), resending one ([`resend`]), and
//! recovering the dead ones since a time ([`recover`]). An agent receives
//! at its endpoint, a client at its jobs' callbacks; each sees only its own.

mod listing;
mod recover;
mod resend;

use shared::domain::{AgentId, ClientId};
use shared::redrive::Recipient;
use utoipa_axum::router::OpenApiRouter;

use crate::http::error::ApiError;
use crate::http::path_id::PathIdKind;
use crate::http::principal::Principal;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    listing::router().merge(resend::router()).merge(recover::router())
}

/// The id of a recipient of deliveries: an agent or a client.
trait RecipientId: PathIdKind {
    fn recipient(self) -> Recipient;
}

impl RecipientId for AgentId {
    fn recipient(self) -> Recipient {
        Recipient::Agent(self)
    }
}

impl RecipientId for ClientId {
    fn recipient(self) -> Recipient {
        Recipient::Client(self)
    }
}

/// The recipient a principal is, if any.
fn recipient_of(principal: &Principal) -> Option<Recipient> {
    match principal {
        Principal::Agent(agent) => Some(Recipient::Agent(*agent)),
        Principal::Client(client) => Some(Recipient::Client(*client)),
        Principal::NewKey(_) => None,
    }
}

/// Only `recipient`'s own key reads or recovers its deliveries; 403 otherwise.
fn require_recipient(principal: &Principal, recipient: Recipient) -> Result<(), ApiError> {
    if recipient_of(principal) == Some(recipient) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("only {recipient}'s own key may read or recover its deliveries")))
    }
}
