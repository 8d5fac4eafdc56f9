//! Where settings come from: explicit values (the environment) first, then an
//! env file such as `.env`.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;

use super::declare::Variable;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("setting {name} is missing: {description} Set it in the environment or in .env")]
    Missing { name: &'static str, description: &'static str },
    #[error("setting {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
    #[error("cannot read {path}: {reason}")]
    EnvFile { path: String, reason: String },
}

#[derive(Debug, Default, Clone)]
pub struct SettingsSource {
    values: HashMap<String, String>,
}

impl SettingsSource {
    /// The process environment, falling back to `.env` in the working
    /// directory when that file exists.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_env_over_file(Path::new(".env"))
    }

    /// The process environment, falling back to the given env file.
    pub fn from_env_over_file(path: &Path) -> Result<Self, SettingsError> {
        let mut source = Self::from_env_file(path)?;
        source.values.extend(std::env::vars());
        Ok(source)
    }

    pub(super) fn from_env_file(path: &Path) -> Result<Self, SettingsError> {
        let mut values = HashMap::new();
        if path.exists() {
            let unreadable =
                |e: dotenvy::Error| SettingsError::EnvFile { path: path.display().to_string(), reason: e.to_string() };
            for entry in dotenvy::from_path_iter(path).map_err(unreadable)? {
                let (key, value) = entry.map_err(unreadable)?;
                values.insert(key, value);
            }
        }
        Ok(Self { values })
    }

    /// Only the given pairs: for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { values: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_owned(), value.into());
    }

    /// `DATABASE_URL` alone, for tools that need nothing else.
    pub fn database_url(&self) -> Result<SecretString, SettingsError> {
        super::stores::DATABASE_URL.read(self)
    }

    /// The trimmed value, or the default when unset or blank.
    pub(super) fn raw(&self, variable: &Variable) -> Result<&str, SettingsError> {
        match self.values.get(variable.name) {
            Some(value) if !value.trim().is_empty() => Ok(value.trim()),
            _ => variable.default.ok_or_else(|| variable.missing()),
        }
    }
}
