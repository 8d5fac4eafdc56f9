//! What a client says about a finished job: a score of 1 to 5 stars and an
//! optional comment.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::agent::check_text;
use super::whole_number::WholeNumber;
use super::{ParseError, serde_via_str};

/// 1 to 5 stars: a JSON integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(try_from = "WholeNumber", into = "i16")]
pub struct RatingScore(i16);

impl RatingScore {
    pub fn value(self) -> i16 {
        self.0
    }
}

impl TryFrom<i64> for RatingScore {
    type Error = ParseError;
    fn try_from(score: i64) -> Result<Self, ParseError> {
        match i16::try_from(score) {
            Ok(score @ 1..=5) => Ok(Self(score)),
            _ => Err(ParseError::new("must be an integer from 1 to 5")),
        }
    }
}

impl TryFrom<WholeNumber> for RatingScore {
    type Error = ParseError;
    fn try_from(score: WholeNumber) -> Result<Self, ParseError> {
        Self::try_from(score.0)
    }
}

impl From<RatingScore> for i16 {
    fn from(score: RatingScore) -> Self {
        score.0
    }
}

/// 1–1000 characters of text, trimmed; line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingComment(String);

impl RatingComment {
    pub const MAX_CHARS: usize = 1000;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RatingComment {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let comment = s.trim();
        if comment.is_empty() {
            return Err(ParseError::new("must not be empty; leave it out instead"));
        }
        check_text(comment, Self::MAX_CHARS)?;
        Ok(Self(comment.to_owned()))
    }
}

impl fmt::Display for RatingComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(RatingComment, "a comment");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_one_to_five_stars() {
        assert_eq!(serde_json::from_str::<RatingScore>("4").unwrap().value(), 4);
        for refused in ["0", "6", "-1", "70000", "4.5", "\"4\""] {
            assert!(serde_json::from_str::<RatingScore>(refused).is_err(), "{refused}");
        }
        assert!(serde_json::from_str::<RatingScore>("9").unwrap_err().to_string().contains("from 1 to 5"));
    }

    #[test]
    fn comments_are_trimmed_and_bounded() {
        assert_eq!(" great work\n".parse::<RatingComment>().unwrap().as_str(), "great work");
        assert!("  ".parse::<RatingComment>().is_err());
        assert!("é".repeat(1000).parse::<RatingComment>().is_ok(), "length counts characters");
        assert!("é".repeat(1001).parse::<RatingComment>().is_err());
        assert!("bell\u{7}".parse::<RatingComment>().is_err());
    }
}
