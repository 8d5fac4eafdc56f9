//! The `{id}` of a path as the id it names: [`PathId<T>`] parses it (a
//! malformed id is a 422 naming `id`) and documents it, once for every
//! route, from the id's prefix.

use std::fmt::Display;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use shared::domain::{AgentId, ClientId, DeliveryId, JobId, ParseError};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use crate::http::error::ApiError;

/// An id a path names, by the prefix it is written with.
pub trait PathIdKind: FromStr<Err = ParseError> + Display + Copy + Send + Sync + 'static {
    /// What it names: `agent` for `agt_…`.
    const NAME: &'static str;
    const PREFIX: &'static str;
}

impl PathIdKind for AgentId {
    const NAME: &'static str = "agent";
    const PREFIX: &'static str = AgentId::PREFIX;
}

impl PathIdKind for ClientId {
    const NAME: &'static str = "client";
    const PREFIX: &'static str = ClientId::PREFIX;
}

impl PathIdKind for JobId {
    const NAME: &'static str = "job";
    const PREFIX: &'static str = JobId::PREFIX;
}

impl PathIdKind for DeliveryId {
    const NAME: &'static str = "delivery";
    const PREFIX: &'static str = DeliveryId::PREFIX;
}

/// The path's `{id}`, parsed as a `T`; in `#[utoipa::path]`, `params(PathId<T>)`.
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: PathIdKind> FromRequestParts<S> for PathId<T> {
    /// axum's own answer for a path that is not UTF-8, as before the id is read.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        id.parse().map(Self).map_err(|error| ApiError::invalid("id", error).into_response())
    }
}

impl<T: PathIdKind> IntoParams for PathId<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let pattern = format!("^{}_[0-9a-fA-F]{{32}}$", T::PREFIX);
        let parameter = ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(format!("{} id, `{}_…`", T::NAME, T::PREFIX)))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))));
        vec![parameter.build()]
    }
}
