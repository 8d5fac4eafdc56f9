//! Prefixed, unguessable identifiers (`agt_` + 122 random bits), stored as
//! `uuid` in Postgres and shown with their prefix everywhere else, so an id
//! says what it names and one kind cannot be passed for another.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::ParseError;

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let invalid = || ParseError::new(format!("must be an id like {}_ followed by 32 hex digits", $prefix));
                let hex = s.strip_prefix(concat!($prefix, "_")).ok_or_else(invalid)?;
                if hex.len() != 32 {
                    return Err(invalid());
                }
                Uuid::try_parse(hex).map(Self).map_err(|_| invalid())
            }
        }

        super::serde_via_str!($name, concat!("an id starting with ", $prefix, "_"));
    };
}

prefixed_id!(AgentId, "agt");
prefixed_id!(ClientId, "cli");
prefixed_id!(JobId, "job");
prefixed_id!(EventId, "evt");
prefixed_id!(DeliveryId, "dlv");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_prefix() {
        let id = AgentId::generate();
        let text = id.to_string();
        assert!(text.starts_with("agt_") && text.len() == 36);
        assert_eq!(text.parse::<AgentId>().unwrap(), id);
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in
            ["", "agt_", "job_0123456789abcdef0123456789abcdef", "agt_0123456789abcdef0123456789abcdeg", "agt_0123"]
        {
            assert!(bad.parse::<AgentId>().is_err(), "{bad}");
        }
        // A hyphenated uuid is not the canonical form.
        assert!(format!("agt_{}", Uuid::new_v4()).parse::<AgentId>().is_err());
    }
}
