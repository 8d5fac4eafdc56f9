//! Request extractors that turn every kind of bad input into an
//! [`ApiError`] naming the offending field, instead of axum's plain-text
//! rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::domain::EndpointUrl;
use utoipa::IntoParams;

use crate::http::error::ApiError;
use crate::http::rate_limit;
use crate::http::state::AppState;

/// The whole body, within `REQUEST_BODY_LIMIT_BYTES`.
pub async fn read_body(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| match rejection.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { limit: state.settings.request_body_limit_bytes }
        }
        _ => ApiError::MalformedBody(format!("could not read the body: {rejection}")),
    })
}

/// A JSON object body parsed into `T`, errors naming the field.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType("send the body as Content-Type: application/json".into()));
    }
    // Serde would also read a struct from an array; requests are objects.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()).is_some_and(|first| *first == b'[') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer.end().map_err(|e| ApiError::MalformedBody(format!("body is not valid JSON: {e}")))?;
    Ok(value)
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return ApiError::MalformedBody(format!("body is not valid JSON: {inner}"));
    }
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let message = inner.to_string();
    let message = message.strip_suffix(&position).unwrap_or(&message);
    field_error(&path, message)
}

/// A serde message about one field, attributed to it. Unknown and missing
/// fields are named in the message rather than in the path.
fn field_error(path: &str, message: &str) -> ApiError {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match (named, path) {
        (Some(name), "." | "") => name.to_owned(),
        // Unknown fields are already in the path; missing ones are not.
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "." | "") => "body".to_owned(),
        (None, path) => path.to_owned(),
    };
    ApiError::invalid(field, message)
}

/// A query string deserialized into `T`, with the same field-naming errors
/// as JSON bodies.
pub struct ValidQuery<T>(pub T);

/// Where a registration came from, as it is recorded (never shown): the
/// caller's IPv4 address or IPv6 /64; `None` when unknown or local (see
/// [`rate_limit::registration_address`]).
pub struct RegistrationAddress(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RegistrationAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(rate_limit::registration_address(&parts.headers, &parts.extensions)))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Self).map_err(|error| {
            let path = error.path().to_string();
            field_error(&path, &error.into_inner().to_string())
        })
    }
}

/// The query of a listing without filters: its page size and where it goes on.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u16>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// Plain http webhook URLs are a local-development convenience only.
pub fn require_allowed_scheme(state: &AppState, field: &str, url: &EndpointUrl) -> Result<(), ApiError> {
    if url.is_https() || state.settings.allow_http_endpoints {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be an https URL"))
    }
}

/// A webhook target (an agent's endpoint, a job's callback) the worker could
/// deliver to: an allowed scheme, and as far as can be told now, an address
/// the egress policy permits (`shared::egress::EgressPolicy::check_target`:
/// no IP literal outside the allow-list, no name resolving only to
/// non-public addresses; a name that does not resolve now is accepted).
pub async fn require_deliverable(state: &AppState, field: &str, url: &EndpointUrl) -> Result<(), ApiError> {
    require_allowed_scheme(state, field, url)?;
    state.settings.egress_policy.check_target(url.as_url()).await.map_err(|why| ApiError::invalid(field, why))
}

/// The page size every listing takes as `limit`: 1 to 100, 20 when absent.
pub fn page_size(limit: Option<u16>) -> Result<u16, ApiError> {
    const DEFAULT: u16 = 20;
    const MAX: u16 = 100;
    let limit = limit.unwrap_or(DEFAULT);
    if !(1..=MAX).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be from 1 to {MAX}")));
    }
    Ok(limit)
}

/// For `#[serde(default, deserialize_with = "present")]` on a change's
/// optional fields: absent is `None`, but `null` is refused (naming the
/// field), as it could mean "no change" or "clear it".
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(value: D) -> Result<Option<T>, D::Error> {
    T::deserialize(value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::InvalidField { field, .. } => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert_eq!(field_of(field_error("colour", "unknown field `colour`, expected one of `name`")), "colour");
        assert_eq!(field_of(field_error(".", "missing field `name`")), "name");
        assert_eq!(field_of(field_error("owner", "missing field `email`")), "owner.email");
        assert_eq!(field_of(field_error("capabilities[2]", "bad tag")), "capabilities[2]");
        assert_eq!(field_of(field_error(".", "invalid type: string, expected a map")), "body");
    }
}
