//! The URL an agent receives webhooks on.

use std::fmt;
use std::str::FromStr;

use url::Url;

use super::{ParseError, serde_via_str};

/// An absolute `http`/`https` URL with a host, no credentials and no fragment.
/// Whether plain `http` is acceptable is a deployment setting
/// (`ALLOW_HTTP_ENDPOINTS`), applied by the caller with [`EndpointUrl::is_https`].
/// Where it may connect to is decided at delivery time, on resolved addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for EndpointUrl {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::new(format!("must be at most {} characters", Self::MAX_LEN)));
        }
        let url = Url::parse(s.trim()).map_err(|e| ParseError::new(format!("must be an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ParseError::new("must be an https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ParseError::new("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ParseError::new("must not contain credentials"));
        }
        if url.fragment().is_some() {
            return Err(ParseError::new("must not contain a #fragment"));
        }
        Ok(Self(url))
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}
serde_via_str!(EndpointUrl, "an https URL");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_web_urls() {
        let url: EndpointUrl = "https://agent.example.com/hooks?x=1".parse().unwrap();
        assert!(url.is_https());
        assert!(!"http://localhost:9000/hook".parse::<EndpointUrl>().unwrap().is_https());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "agent.example.com/hook",
            "ftp://agent.example.com/",
            "https://user:pw@agent.example.com/",
            "https://agent.example.com/#frag",
            "file:///etc/passwd",
            "https://",
        ] {
            assert!(bad.parse::<EndpointUrl>().is_err(), "{bad}");
        }
        assert!(format!("https://a.example/{}", "x".repeat(2048)).parse::<EndpointUrl>().is_err());
    }
}
