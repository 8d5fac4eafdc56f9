//! What an agent says about itself: its name, description and capabilities.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{ParseError, serde_via_str};

/// 1–100 characters of visible text, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    pub const MAX_CHARS: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AgentName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if name.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        check_text(name, Self::MAX_CHARS)?;
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(AgentName, "an agent name");

/// Up to 2000 characters of text; line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentDescription(String);

impl AgentDescription {
    pub const MAX_CHARS: usize = 2000;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AgentDescription {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let description = s.trim();
        check_text(description, Self::MAX_CHARS)?;
        Ok(Self(description.to_owned()))
    }
}

impl fmt::Display for AgentDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(AgentDescription, "a description");

pub(super) fn check_text(text: &str, max_chars: usize) -> Result<(), ParseError> {
    if text.chars().count() > max_chars {
        return Err(ParseError::new(format!("must be at most {max_chars} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ParseError::new("must not contain control characters"));
    }
    Ok(())
}

/// A capability tag such as `translation` or `code.review`: 1–64 of
/// `a-z 0-9 . _ -`, starting with a letter or digit. Input is lower-cased, so
/// `Translation` and `translation` are one tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapabilityTag(String);

impl CapabilityTag {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for CapabilityTag {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let tag = s.trim().to_ascii_lowercase();
        let well_formed = !tag.is_empty()
            && tag.len() <= Self::MAX_LEN
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric())
            && tag.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !well_formed {
            return Err(ParseError::new(format!(
                "capability tags are 1-{} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit; got {s:?}",
                Self::MAX_LEN
            )));
        }
        Ok(Self(tag))
    }
}

impl fmt::Display for CapabilityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(CapabilityTag, "a capability tag");

/// The capabilities of an agent: 1–32 distinct tags, kept sorted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities(Vec<CapabilityTag>);

impl Capabilities {
    pub const MAX_TAGS: usize = 32;

    pub fn new(tags: Vec<CapabilityTag>) -> Result<Self, ParseError> {
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        if tags.is_empty() {
            return Err(ParseError::new("must name at least one capability"));
        }
        if tags.len() > Self::MAX_TAGS {
            return Err(ParseError::new(format!("must name at most {} capabilities", Self::MAX_TAGS)));
        }
        Ok(Self(tags))
    }

    pub fn tags(&self) -> &[CapabilityTag] {
        &self.0
    }

    /// As stored in the `text[]` column.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|tag| tag.as_str().to_owned()).collect()
    }
}

impl<'de> serde::Deserialize<'de> for Capabilities {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tags = Vec::<CapabilityTag>::deserialize(deserializer)?;
        Self::new(tags).map_err(serde::de::Error::custom)
    }
}

/// An average rating from 0 to 5 with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(Decimal);

impl Rating {
    pub const MAX: Decimal = Decimal::from_parts(5, 0, 0, false, 0);

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl FromStr for Rating {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseError::new("must be a number from 0 to 5 with at most two decimals");
        let value = Decimal::from_str_exact(s.trim()).map_err(|_| invalid())?;
        if value.is_sign_negative() || value > Self::MAX || value.scale() > 2 {
            return Err(invalid());
        }
        Ok(Self(value))
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
serde_via_str!(Rating, "a rating from 0 to 5");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!("  Translator ".parse::<AgentName>().unwrap().as_str(), "Translator");
        assert!("   ".parse::<AgentName>().is_err());
        assert!("a".repeat(101).parse::<AgentName>().is_err());
        assert!("é".repeat(100).parse::<AgentName>().is_ok(), "length counts characters, not bytes");
        assert!("bell\u{7}".parse::<AgentName>().is_err());
    }

    #[test]
    fn descriptions_allow_lines_but_not_controls() {
        assert!("line one\nline two".parse::<AgentDescription>().is_ok());
        assert!("".parse::<AgentDescription>().is_ok());
        assert!("x\u{0}".parse::<AgentDescription>().is_err());
        assert!("x".repeat(2001).parse::<AgentDescription>().is_err());
    }

    #[test]
    fn tags_are_normalised() {
        assert_eq!("Code.Review".parse::<CapabilityTag>().unwrap().as_str(), "code.review");
        for bad in ["", "-lead", "has space", "ünïcode", &"t".repeat(65)] {
            assert!(bad.parse::<CapabilityTag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn capabilities_are_distinct_sorted_and_bounded() {
        let tags = |names: &[&str]| names.iter().map(|n| n.parse().unwrap()).collect::<Vec<CapabilityTag>>();
        let caps = Capabilities::new(tags(&["b", "a", "B"])).unwrap();
        assert_eq!(caps.to_strings(), ["a", "b"]);
        assert!(Capabilities::new(vec![]).is_err());
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert!(Capabilities::new(tags(&many.iter().map(String::as_str).collect::<Vec<_>>())).is_err());
    }

    #[test]
    fn ratings_are_bounded() {
        assert!("4.75".parse::<Rating>().is_ok());
        for bad in ["-1", "5.01", "4.123", "four"] {
            assert!(bad.parse::<Rating>().is_err(), "{bad}");
        }
    }
}
