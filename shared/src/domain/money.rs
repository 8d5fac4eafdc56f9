//! Money as an exact decimal, never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{ParseError, serde_via_str};

/// A price in the platform's currency: from 0 to 1,000,000 with at most six
/// decimals (the `numeric(18, 6)` column). Written in JSON as a string such as
/// `"12.50"` so no client's float parser can round it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(Decimal);

impl Price {
    pub const MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
    pub const MAX_SCALE: u32 = 6;

    pub fn value(self) -> Decimal {
        self.0
    }

    /// A price read back from the database, where the column constrains it.
    pub fn from_stored(value: Decimal) -> Self {
        Self(value.normalize())
    }
}

impl FromStr for Price {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str_exact(s.trim())
            .map_err(|_| ParseError::new(format!("must be a decimal string such as \"12.50\", got {s:?}")))?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(ParseError::new("must not be negative"));
        }
        if value > Self::MAX {
            return Err(ParseError::new(format!("must be at most {}", Self::MAX)));
        }
        if value.normalize().scale() > Self::MAX_SCALE {
            return Err(ParseError::new(format!("must have at most {} decimals", Self::MAX_SCALE)));
        }
        Ok(Self(value.normalize()))
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
serde_via_str!(Price, "a decimal string such as \"12.50\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!("12.50".parse::<Price>().unwrap().to_string(), "12.5");
        assert_eq!("0.000001".parse::<Price>().unwrap().to_string(), "0.000001");
        assert_eq!("1000000".parse::<Price>().unwrap().to_string(), "1000000");
    }

    #[test]
    fn refuses_out_of_range_and_non_numbers() {
        for bad in ["-1", "1000000.01", "0.0000001", "1e3", "ten", "NaN", ""] {
            assert!(bad.parse::<Price>().is_err(), "{bad}");
        }
    }

    #[test]
    fn json_numbers_are_refused_so_nothing_is_rounded() {
        assert!(serde_json::from_str::<Price>("12.5").is_err());
        assert_eq!(serde_json::from_str::<Price>("\"12.5\"").unwrap().to_string(), "12.5");
        assert_eq!(serde_json::to_string(&"3.10".parse::<Price>().unwrap()).unwrap(), "\"3.1\"");
    }
}
