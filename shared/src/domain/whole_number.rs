//! Whole numbers as JSON Schema counts them: `integer` is any number whose
//! fractional part is zero, so `5.0` is as much an integer as `5`. Serde's
//! integer types refuse `5.0`; fields documented as integers read through
//! this instead, so the API accepts what its OpenAPI document promises.

use std::fmt;

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// `5` or `5.0`; never `5.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

/// Below 2^53 every whole `f64` is exact.
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        if let Some(value) = number.as_i64() {
            return Ok(Self(value));
        }
        match number.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(value) if value.fract() == 0.0 && value.abs() < EXACT_LIMIT => Ok(Self(value as i64)),
            _ => Err(D::Error::custom(format!("must be a whole number in range, got {number}"))),
        }
    }
}

/// For `#[serde(default, deserialize_with = "…::optional")]` on an
/// `Option<u32>` or the like.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
    T::Error: fmt::Display,
{
    match Option::<WholeNumber>::deserialize(deserializer)? {
        None => Ok(None),
        Some(WholeNumber(value)) => {
            T::try_from(value).map(Some).map_err(|_| D::Error::custom(format!("{value} is out of range")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "optional")]
        seconds: Option<u32>,
    }

    fn seconds(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Body>(json).map(|body| body.seconds).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_with_or_without_a_fraction_are_read() {
        assert_eq!(seconds(r#"{"seconds": 60}"#), Ok(Some(60)));
        assert_eq!(seconds(r#"{"seconds": 60.0}"#), Ok(Some(60)));
        assert_eq!(seconds(r#"{"seconds": 6e1}"#), Ok(Some(60)));
        assert_eq!(seconds(r#"{}"#), Ok(None));
        assert_eq!(seconds(r#"{"seconds": null}"#), Ok(None));
        assert!(seconds(r#"{"seconds": 60.5}"#).unwrap_err().contains("whole number"));
        assert!(seconds(r#"{"seconds": -1}"#).unwrap_err().contains("out of range"));
        assert!(seconds(r#"{"seconds": "60"}"#).is_err());
    }
}
