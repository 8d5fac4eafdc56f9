//! Discovery's sort orders and keyset cursors: a page starts strictly after
//! the (sort key, id) of the previous page's last agent.

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::http::cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Rating,
    Price,
    Newest,
}

impl SortOrder {
    pub const ALL: [Self; 3] = [Self::Rating, Self::Price, Self::Newest];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rating => "rating",
            Self::Price => "price",
            Self::Newest => "newest",
        }
    }
}

impl<'de> Deserialize<'de> for SortOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "rating" => Ok(Self::Rating),
            "price" => Ok(Self::Price),
            "newest" => Ok(Self::Newest),
            other => Err(serde::de::Error::custom(format!("must be rating, price or newest, got {other:?}"))),
        }
    }
}

/// Where a page starts: strictly after this (sort key, id) in the sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The reputation score, best first.
    Score(Decimal, Uuid),
    Price(Decimal, Uuid),
    Newest(OffsetDateTime, Uuid),
}

impl Cursor {
    /// A position before every row of the sort order.
    pub fn first(sort: SortOrder) -> Self {
        match sort {
            SortOrder::Rating => Self::Score(Decimal::MAX, Uuid::max()),
            SortOrder::Price => Self::Price(Decimal::NEGATIVE_ONE, Uuid::nil()),
            SortOrder::Newest => Self::Newest(cursor::NEWEST_FIRST_START.0, cursor::NEWEST_FIRST_START.1),
        }
    }

    fn sort(self) -> SortOrder {
        match self {
            Self::Score(..) => SortOrder::Rating,
            Self::Price(..) => SortOrder::Price,
            Self::Newest(..) => SortOrder::Newest,
        }
    }

    pub fn encode(self) -> String {
        let (key, id) = match self {
            Self::Score(key, id) | Self::Price(key, id) => (key.to_string(), id),
            Self::Newest(at, id) => (cursor::time_key(at), id),
        };
        cursor::encode(&format!("sort={}", self.sort().as_str()), &key, id)
    }

    pub fn decode(text: &str, sort: SortOrder) -> Result<Self, String> {
        let (key, id) = cursor::decode(text, &format!("sort={}", sort.as_str()))?;
        let invalid = || "is not a cursor this API issued".to_owned();
        let decimal = || Decimal::from_str_exact(&key).map_err(|_| invalid());
        Ok(match sort {
            SortOrder::Rating => Self::Score(decimal()?, id),
            SortOrder::Price => Self::Price(decimal()?, id),
            SortOrder::Newest => Self::Newest(cursor::parse_time_key(&key).ok_or_else(invalid)?, id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_sort() {
        let id = Uuid::new_v4();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
        for cursor in [
            Cursor::Score(Decimal::new(3_181_818, 6), id),
            Cursor::Price(Decimal::new(1250, 2), id),
            Cursor::Newest(at, id),
        ] {
            assert_eq!(Cursor::decode(&cursor.encode(), cursor.sort()), Ok(cursor));
        }
        let rating = Cursor::Score(Decimal::ONE, id).encode();
        assert!(Cursor::decode(&rating, SortOrder::Price).unwrap_err().contains("sort=rating"));
    }
}
