//! Domain newtypes. Each can only be built by parsing, so a value of the type
//! is valid by construction; parse errors are plain sentences fit to show a
//! caller next to the field name.

mod agent;
mod delivery;
mod endpoint_url;
mod ids;
mod job;
mod money;
mod public_key;
mod rating;
mod webhook_secret;
pub mod whole_number;

pub use agent::{AgentDescription, AgentName, Capabilities, CapabilityTag, Rating};
pub use delivery::{DeliveryStatus, Outcome};
pub use endpoint_url::EndpointUrl;
pub use ids::{AgentId, ClientId, DeliveryId, EventId, JobId};
pub use job::{JobStatus, JobTransition, JobWindow};
pub use money::Price;
pub use public_key::PublicKey;
pub use rating::{RatingComment, RatingScore};
pub use webhook_secret::WebhookSecret;

/// Implements `Deserialize` (via `FromStr`) and `Serialize` (via `Display`) for
/// a domain type, so parsing happens while JSON is read and the error message
/// is attributed to the field.
macro_rules! serde_via_str {
    ($type:ty, $expecting:expr) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                        value.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}
pub(crate) use serde_via_str;

/// A sentence explaining why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
