//! How a variable is declared: `variables!` turns one entry per variable (its
//! doc comment, name, type, default, secrecy, and the parse that holds its
//! bounds) into a typed [`Setting`] and the owner's list of [`Variable`]s;
//! `settings!` turns one row per field into [`super::Settings`] and its
//! `from_source`.
//!
//! Hand-written rather than `envy`, `figment` or `config`: those deserialize
//! through serde, whose errors name neither the variable the way these do nor
//! keep a secret's value out of the message, and none checks that
//! `deploy/.env.example` and the settings table match the declarations.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use super::source::{SettingsError, SettingsSource};

/// A variable as operators see it: its name, its default (`None`: required),
/// whether it is secret, and what it is for.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: Option<&'static str>,
    /// The value `deploy/.env.example` sets for local development instead of
    /// the default (`None`: the default).
    pub local: Option<&'static str>,
    /// Its value is never echoed in an error, and its field's `Debug` hides it.
    pub secret: bool,
    pub description: &'static str,
}

impl Variable {
    pub fn missing(&self) -> SettingsError {
        SettingsError::Missing { name: self.name, description: self.description }
    }

    fn malformed(&self, refusal: Refusal, raw: &str) -> SettingsError {
        let reason = match refusal {
            Refusal::Unparsable(reason) if !self.secret => format!("{reason} (value {raw:?})"),
            Refusal::Unparsable(reason) | Refusal::Invalid(reason) => reason,
        };
        SettingsError::Malformed { name: self.name, reason }
    }
}

/// Why a parse refused a value.
#[derive(Debug)]
pub enum Refusal {
    /// Not a value of the type: the reason, then the value unless it is secret.
    Unparsable(String),
    /// Readable but out of bounds: the reason alone, which shows the value
    /// only where it is not secret.
    Invalid(String),
}

/// A declared variable and how its text becomes a `T`.
pub struct Setting<T> {
    pub variable: Variable,
    parse: fn(&str) -> Result<T, Refusal>,
}

impl<T> Setting<T> {
    /// Its value in `source`, or its default; the error names it.
    pub fn read(&self, source: &SettingsSource) -> Result<T, SettingsError> {
        let raw = source.raw(&self.variable)?;
        (self.parse)(raw).map_err(|refusal| self.variable.malformed(refusal, raw))
    }

    /// Used by `variables!`: the name and doc comment of the declaration.
    pub const fn named(mut self, name: &'static str, doc: &'static str) -> Self {
        self.variable.name = name;
        self.variable.description = doc.trim_ascii();
        self
    }
}

/// What a declaration says besides its name, doc and parse.
pub struct Spec {
    default: Option<&'static str>,
    local: Option<&'static str>,
    secret: bool,
}

pub const fn default(value: &'static str) -> Spec {
    Spec { default: Some(value), local: None, secret: false }
}

pub const fn required() -> Spec {
    Spec { default: None, local: None, secret: false }
}

impl Spec {
    pub const fn secret(self) -> Self {
        Self { secret: true, ..self }
    }

    pub const fn local(self, value: &'static str) -> Self {
        Self { local: Some(value), ..self }
    }

    pub const fn parse<T>(self, parse: fn(&str) -> Result<T, Refusal>) -> Setting<T> {
        let variable =
            Variable { name: "", default: self.default, local: self.local, secret: self.secret, description: "" };
        Setting { variable, parse }
    }
}

/// Declares each variable once: `/// doc` then `NAME: Type = spec.parse(f);`.
/// Makes `pub const NAME: Setting<Type>` and `VARIABLES`, the owner's list.
macro_rules! variables {
    ($($(#[doc = $doc:literal])+ $name:ident: $type:ty = $spec:expr;)+) => {
        $(
            $(#[doc = $doc])+
            pub const $name: $crate::settings::declare::Setting<$type> =
                $spec.named(stringify!($name), concat!($($doc),+));
        )+
        pub(super) const VARIABLES: &[$crate::settings::declare::Variable] = &[$($name.variable),+];
    };
}
pub(super) use variables;

/// What fills a field of [`super::Settings`]: one variable, or a function
/// reading several (such as a bucket's capacity and refill).
pub trait Read {
    type Value;
    fn read(&self, source: &SettingsSource) -> Result<Self::Value, SettingsError>;
}

impl<T> Read for Setting<T> {
    type Value = T;
    fn read(&self, source: &SettingsSource) -> Result<T, SettingsError> {
        Setting::read(self, source)
    }
}

impl<T, F: Fn(&SettingsSource) -> Result<T, SettingsError>> Read for F {
    type Value = T;
    fn read(&self, source: &SettingsSource) -> Result<T, SettingsError> {
        self(source)
    }
}

/// One row per field: `field: Type = what reads it,` (a [`Read`]).
macro_rules! settings {
    ($($(#[$meta:meta])* $field:ident: $type:ty = $read:expr,)+) => {
        /// Every setting, typed. Secrets print as redacted in `Debug`.
        #[derive(Clone, Debug)]
        pub struct Settings {
            $($(#[$meta])* pub $field: $type,)+
        }

        impl Settings {
            pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
                Ok(Self { $($field: $crate::settings::declare::Read::read(&$read, source)?,)+ })
            }
        }
    };
}
pub(super) use settings;

// The parses declarations share; an owner keeps its own.

/// Any `FromStr` type.
pub fn from_str<T: FromStr<Err: Display>>(raw: &str) -> Result<T, Refusal> {
    raw.parse().map_err(|error: T::Err| Refusal::Unparsable(error.to_string()))
}

/// A number above 0.
pub fn positive<T: FromStr<Err: Display> + Default + PartialEq>(raw: &str) -> Result<T, Refusal> {
    let value: T = from_str(raw)?;
    if value == T::default() {
        return Err(Refusal::Invalid("must be above 0".into()));
    }
    Ok(value)
}

/// A value from `min` to `max`.
pub fn in_range<T: FromStr<Err: Display> + PartialOrd + Display>(raw: &str, min: T, max: T) -> Result<T, Refusal> {
    let value: T = from_str(raw)?;
    if value < min || value > max {
        return Err(Refusal::Invalid(format!("must be from {min} to {max}, got {value}")));
    }
    Ok(value)
}

/// Whole seconds, above 0.
pub fn seconds(raw: &str) -> Result<Duration, Refusal> {
    positive(raw).map(Duration::from_secs)
}

/// The text as it is (trimmed; empty allowed).
pub fn text(raw: &str) -> Result<String, Refusal> {
    Ok(raw.to_owned())
}

/// The text, or `None` when empty.
pub fn optional(raw: &str) -> Result<Option<String>, Refusal> {
    Ok(Some(raw.to_owned()).filter(|value| !value.is_empty()))
}

/// A `FromStr` value, or `None` when empty.
pub fn optional_from_str<T: FromStr<Err: Display>>(raw: &str) -> Result<Option<T>, Refusal> {
    if raw.is_empty() { Ok(None) } else { from_str(raw).map(Some) }
}

pub fn http_url(raw: &str) -> Result<String, Refusal> {
    if !(raw.starts_with("http://") || raw.starts_with("https://")) {
        return Err(Refusal::Invalid(format!("must be an http(s) URL, got {raw:?}")));
    }
    Ok(raw.to_owned())
}

/// A Google resource name such as `projects/P/topics/T`: `collections` are
/// the fixed parts (`["projects", "topics"]`), each followed by an id.
pub fn resource_name(raw: &str, collections: &[&str]) -> Result<String, Refusal> {
    let parts: Vec<&str> = raw.split('/').collect();
    let well_formed = parts.len() == 2 * collections.len()
        && parts.chunks(2).zip(collections).all(|(pair, collection)| pair[0] == *collection && !pair[1].is_empty());
    if !well_formed {
        // `projects/PROJECT/topics/TOPIC`: each collection, then its id's placeholder.
        let pattern: Vec<String> = collections
            .iter()
            .map(|collection| format!("{collection}/{}", collection.trim_end_matches('s').to_uppercase()))
            .collect();
        return Err(Refusal::Invalid(format!("must be {}, got {raw:?}", pattern.join("/"))));
    }
    Ok(raw.to_owned())
}
