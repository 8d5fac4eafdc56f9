//! One error type for every handler, rendered as RFC 9457
//! `application/problem+json`. Bad input is always a 4xx naming the field;
//! only our own faults are a 500, and their details stay in the logs.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::error_chain::Causes;
use utoipa::{IntoResponses, ToSchema};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field's value was refused (JSON body, query string or path).
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// The body is not JSON at all, or not the JSON object expected.
    #[error("{0}")]
    MalformedBody(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A signed-request check failed; `slug` says which.
    #[error("{message}")]
    Unauthorized { slug: &'static str, message: String },
    /// Authenticated, but this principal may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    /// The request conflicts with the resource's current state.
    #[error("{0}")]
    Conflict(String),
    /// A token bucket is empty; `headers` say which and when it refills.
    #[error("rate limit exceeded; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64, headers: HeaderMap },
    /// A lasting cap on this resource is reached (e.g. a delivery's resends).
    #[error("{0}")]
    LimitReached(String),
    /// Allowed again in `retry_after_seconds` (e.g. one resend a minute).
    #[error("{message}")]
    TooSoon { message: String, retry_after_seconds: u64 },
    /// A dependency (Postgres, Redis) is unavailable; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::InvalidField { field: field.into(), message: message.to_string() }
    }

    /// Text Postgres cannot store.
    pub fn nul_in_body() -> Self {
        Self::invalid("body", "must not contain NUL (\\u0000) characters")
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } | Self::LimitReached(_) | Self::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type` slug: stable, so clients can branch on it.
    fn slug(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } => "invalid-field",
            Self::MalformedBody(_) => "malformed-body",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::Unauthorized { slug, .. } => slug,
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate-limited",
            Self::LimitReached(_) => "limit-reached",
            Self::TooSoon { .. } => "too-soon",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:agent-registry:problem:<slug>`, e.g. `…:invalid-field`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For `invalid-field`: which field was refused and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The refusals any signed request may get, for the OpenAPI document.
#[derive(IntoResponses)]
pub enum SignedRequestRefusals {
    /// A signature check failed; the problem `type` says which.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The signer may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// A field, a header or the path was refused; `errors` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    InvalidField(Problem),
    /// Too many requests from this address or this key; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Redis is unreachable, so the nonce cannot be checked (or Postgres, so the key cannot be found); retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The refusals of a request body, for every operation that takes one.
#[derive(IntoResponses)]
pub enum BodyRefusals {
    /// `malformed-body`: the body is not JSON, or could not be read.
    #[response(status = 400, content_type = "application/problem+json")]
    MalformedBody(Problem),
    /// `payload-too-large`: the body is over `REQUEST_BODY_LIMIT_BYTES`.
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// `unsupported-media-type`: the body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

/// The refusals of a public (unsigned) read, for the OpenAPI document.
#[derive(IntoResponses)]
pub enum PublicReadRefusals {
    /// A parameter or the path was refused; `errors` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    InvalidField(Problem),
    /// Too many reads from this address; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Postgres is unreachable; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Internal(error) => {
                tracing::error!(error = %Causes(&**error), "request failed");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let errors = match &self {
            Self::InvalidField { field, message } => {
                vec![FieldError { field: field.clone(), message: message.clone() }]
            }
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("urn:agent-registry:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self {
            Self::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RateLimited { headers, .. } => response.headers_mut().extend(headers.clone()),
            Self::TooSoon { retry_after_seconds, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response
    }
}

/// Constraint violations are the client's doing and become 4xx, by
/// constraint name; lost connections become 503 so clients retry.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if let Some(mapped) = db.constraint().and_then(constraint_error) {
                return mapped;
            }
            // 22P05 (unsupported \u0000 in jsonb), 22021 (NUL in text): text Postgres cannot store.
            if matches!(db.code().as_deref(), Some("22P05" | "22021")) {
                return Self::nul_in_body();
            }
        }
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %error, "database unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

fn constraint_error(constraint: &str) -> Option<ApiError> {
    match constraint {
        "agents_public_key_unique" => {
            Some(ApiError::Conflict("public_key: an agent with this public key is already registered".into()))
        }
        "clients_public_key_unique" => {
            Some(ApiError::Conflict("public_key: a client with this public key is already registered".into()))
        }
        _ => None,
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
