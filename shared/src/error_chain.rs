//! One rendering of an error with its causes, for every log line and
//! message that shows them.
//!
//! Walking `source()` and joining each `Display` (what anyhow's `{:#}` does)
//! repeats text when an error's `Display` already includes its source, as the
//! Google crates' errors do ("cannot connect to endpoint: {source}"): a
//! refused Pub/Sub connection read "events not published: cannot connect to
//! endpoint: X: X: …". Here a cause whose text its own parent's text
//! already holds is left out; a cause that only happens to share words with
//! an error further out is kept.

use std::error::Error;
use std::fmt;

/// `error` and each cause that adds text, joined by ": ".
pub fn render(error: &(dyn Error + 'static)) -> String {
    Causes(error).to_string()
}

/// [`render`] as a `Display`, for log fields: `error = %Causes(&*error)`.
pub struct Causes<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parent = self.0.to_string();
        f.write_str(&parent)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !parent.contains(&text) {
                write!(f, ": {text}")?;
            }
            parent = text;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose `Display` includes its source, as the Google crates' do.
    #[derive(Debug)]
    struct Wraps(std::io::Error);

    impl fmt::Display for Wraps {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cannot connect to endpoint: {}", self.0)
        }
    }

    impl Error for Wraps {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_shown_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = anyhow::Error::new(Wraps(refused)).context("events not published");
        assert_eq!(
            format!("{error:#}"),
            "events not published: cannot connect to endpoint: connection refused: connection refused"
        );
        assert_eq!(render(&*error), "events not published: cannot connect to endpoint: connection refused");
    }

    /// "timed out" is in the outermost message, but not in its own parent's:
    /// it is a cause of its own, not a repetition.
    #[test]
    fn a_cause_that_only_shares_words_with_an_outer_error_is_kept() {
        let error = anyhow::anyhow!("timed out").context("cannot read the reply").context("the send timed out");
        assert_eq!(render(&*error), "the send timed out: cannot read the reply: timed out");
    }

    #[test]
    fn distinct_causes_are_all_shown() {
        let error = anyhow::anyhow!("disk full").context("cannot write").context("cannot save");
        assert_eq!(render(&*error), "cannot save: cannot write: disk full");
        assert_eq!(Causes(&*error).to_string(), format!("{error:#}"));
    }
}
