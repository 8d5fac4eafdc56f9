//! Who may push. In the cloud, Cloud Tasks presents an OIDC token that
//! Google signed for the tasks-invoker service account: the worker checks
//! it itself (signature against Google's keys, issuer, audience = this
//! worker's push URL, the account's verified email, expiry), so it does not
//! rest on Cloud Run IAM alone. Locally the Cloud Tasks stand-in presents
//! the shared secret instead. No header besides `Authorization` admits a
//! push: `X-CloudTasks-*` headers can be set by whoever calls.

use anyhow::Context;
use axum::http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::{Algorithm, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::settings::Settings;
use subtle::ConstantTimeEq;

use crate::google_keys::GoogleKeys;

/// The issuers of Google's ID tokens (both spellings are in use).
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

pub enum PushAuth {
    /// `Authorization: Bearer <WORKER_SHARED_SECRET>` (local stand-in).
    SharedSecret(SecretString),
    /// `Authorization: Bearer <Google-signed ID token>` (Cloud Tasks).
    GoogleOidc(Box<GoogleOidc>),
}

pub struct GoogleOidc {
    keys: GoogleKeys,
    validation: Validation,
    service_account: String,
}

/// Why a push was refused (logged; the caller only learns it was refused).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("no bearer credentials")]
    Missing,
    #[error("wrong shared secret")]
    WrongSecret,
    #[error("not a usable token: {0}")]
    Malformed(String),
    #[error("signed with algorithm {0:?}, not RS256")]
    Algorithm(Algorithm),
    #[error("signed by a key Google does not publish")]
    UnknownKey,
    #[error("token refused: {0}")]
    Invalid(String),
    #[error("token is for another account or its email is not verified")]
    WrongAccount,
}

#[derive(Deserialize)]
struct GoogleClaims {
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
}

impl PushAuth {
    /// With `CLOUD_TASKS_INVOKER_SA` set, OIDC tokens for that account and
    /// `WEBHOOK_WORKER_URL`; otherwise `WORKER_SHARED_SECRET`, which must
    /// then be set: nothing else would tell a push from any caller.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let tasks = &settings.cloud_tasks;
        match (&tasks.invoker_service_account, &settings.worker_shared_secret) {
            (Some(_), Some(_)) => anyhow::bail!(
                "set either CLOUD_TASKS_INVOKER_SA (in the cloud: Cloud Tasks' OIDC tokens) or WORKER_SHARED_SECRET (locally), not both"
            ),
            (None, None) => anyhow::bail!(
                "the worker would admit any push: set CLOUD_TASKS_INVOKER_SA (in the cloud) or WORKER_SHARED_SECRET (locally)"
            ),
            (None, Some(secret)) => Ok(Self::SharedSecret(secret.clone())),
            (Some(account), None) => {
                let mut validation = Validation::new(Algorithm::RS256);
                validation.set_issuer(&GOOGLE_ISSUERS);
                validation.set_audience(&[&tasks.worker_url]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                let keys = GoogleKeys::new(settings.google_oidc_jwks_url.clone())
                    .context("cannot set up Google's signing keys")?;
                Ok(Self::GoogleOidc(Box::new(GoogleOidc { keys, validation, service_account: account.clone() })))
            }
        }
    }

    pub async fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let presented = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
        let Some(token) = presented.strip_prefix(b"Bearer ") else {
            return Err(Refused::Missing);
        };
        match self {
            Self::SharedSecret(secret) => {
                let matches = bool::from(token.ct_eq(secret.expose_secret().as_bytes()));
                if matches { Ok(()) } else { Err(Refused::WrongSecret) }
            }
            Self::GoogleOidc(oidc) => {
                let GoogleOidc { keys, validation, service_account } = oidc.as_ref();
                let token = std::str::from_utf8(token).map_err(|_| Refused::Malformed("not UTF-8".into()))?;
                let header = jsonwebtoken::decode_header(token).map_err(|e| Refused::Malformed(e.to_string()))?;
                // Decided before any key is looked up: `none` and HMAC never get that far.
                if header.alg != Algorithm::RS256 {
                    return Err(Refused::Algorithm(header.alg));
                }
                let kid = header.kid.ok_or_else(|| Refused::Malformed("no key id".into()))?;
                let key = keys.key(&kid).await.ok_or(Refused::UnknownKey)?;
                let claims = jsonwebtoken::decode::<GoogleClaims>(token, &key, validation)
                    .map_err(|e| Refused::Invalid(e.to_string()))?
                    .claims;
                if claims.email.as_deref() == Some(service_account.as_str()) && claims.email_verified {
                    Ok(())
                } else {
                    Err(Refused::WrongAccount)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::settings::SettingsSource;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut source = SettingsSource::from_pairs([
            ("DATABASE_URL", "postgres://localhost/db"),
            ("REDIS_URL", "redis://localhost"),
        ]);
        for (name, value) in pairs {
            source.set(name, *value);
        }
        Settings::from_source(&source).unwrap()
    }

    #[test]
    fn the_worker_does_not_start_without_a_way_to_tell_pushes_apart() {
        let error = PushAuth::from_settings(&settings(&[])).err().unwrap().to_string();
        assert!(error.contains("CLOUD_TASKS_INVOKER_SA") && error.contains("WORKER_SHARED_SECRET"), "{error}");
        let both =
            settings(&[("CLOUD_TASKS_INVOKER_SA", "invoker@p.iam.gserviceaccount.com"), ("WORKER_SHARED_SECRET", "s")]);
        assert!(PushAuth::from_settings(&both).err().unwrap().to_string().contains("not both"));
        let cloud = settings(&[("CLOUD_TASKS_INVOKER_SA", "invoker@p.iam.gserviceaccount.com")]);
        assert!(matches!(PushAuth::from_settings(&cloud), Ok(PushAuth::GoogleOidc(_))));
        let local = settings(&[("WORKER_SHARED_SECRET", "s")]);
        assert!(matches!(PushAuth::from_settings(&local), Ok(PushAuth::SharedSecret(_))));
    }
}
