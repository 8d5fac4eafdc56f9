//! Prefixed, unguessable identifiers, stored as `uuid` in Postgres and shown
//! with their prefix everywhere else, so an id says what it names and one
//! kind cannot be passed for another.
//!
//! Agents and clients get 122 random bits (UUIDv4). Jobs, events and
//! deliveries, written several per request, get the millisecond they were
//! made and 74 random bits (UUIDv7): each one's primary key then takes new
//! rows at one hot spot (the current millisecond's) instead of a random
//! page of a large index, and after a checkpoint Postgres writes one
//! full-page image per page touched, so random keys cost an 8 kB image per
//! index per insert on a big table (docs/PERFORMANCE.md, "UUIDv7"). They
//! give away only when they were made, which each one's own resource says
//! anyway.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{Builder, Uuid};

use super::ParseError;

/// 122 random bits.
fn random_uuid() -> Uuid {
    Uuid::new_v4()
}

/// The Unix time in milliseconds, then 74 random bits (UUIDv7 with no
/// counter, so nothing but the millisecond can be guessed from the id
/// before it).
fn time_ordered_uuid() -> Uuid {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
    Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $generate:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self($generate())
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

prefixed_id!(AgentId, "agt", random_uuid);
prefixed_id!(ClientId, "cli", random_uuid);
prefixed_id!(JobId, "job", time_ordered_uuid);
prefixed_id!(EventId, "evt", time_ordered_uuid);
prefixed_id!(DeliveryId, "dlv", time_ordered_uuid);

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

    #[test]
    fn agents_and_clients_are_random() {
        assert_eq!(AgentId::generate().as_uuid().get_version(), Some(uuid::Version::Random));
        assert_eq!(ClientId::generate().as_uuid().get_version(), Some(uuid::Version::Random));
    }

    #[test]
    fn jobs_events_and_deliveries_follow_the_clock_with_random_tails() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let ids = [JobId::generate().as_uuid(), EventId::generate().as_uuid(), DeliveryId::generate().as_uuid()];
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        for id in ids {
            assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
            let (seconds, nanos) = id.get_timestamp().expect("a v7 id has a timestamp").to_unix();
            let millis = seconds * 1000 + u64::from(nanos) / 1_000_000;
            assert!((before..=after).contains(&millis), "{millis} outside {before}..={after}");
        }
        // Made a millisecond apart, they sort by time, bytes and all.
        let earlier = JobId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(earlier < JobId::generate());
        // Within a millisecond only the random bits tell two apart (74; the
        // 62 after the variant are checked here).
        let tails: std::collections::HashSet<u128> =
            (0..1000).map(|_| JobId::generate().as_uuid().as_u128() & ((1 << 62) - 1)).collect();
        assert_eq!(tails.len(), 1000);
    }
}
