//! The web console at `/console/`: static files embedded in the binary
//! ([`assets`]), an API client like any other (it signs its requests in the
//! browser; nothing here authenticates). Every answer under `/console`
//! carries a strict Content-Security-Policy (only this origin's own scripts,
//! styles and API; no inline script; no framing), `nosniff` and no
//! referrer. Assets are fingerprinted and immutable; the entry page is
//! revalidated each load. Answers are compressed (gzip or brotli, as the
//! browser accepts). The per-address rate limit of `/v1/` reads covers
//! these routes too (`http::rate_limit::limit_per_ip`, inside the strict
//! headers, so a 429 carries them as well). The keys it keeps are usable
//! by any script on this origin: `/docs` (`http::openapi`) is the only other
//! page, and it runs only a pinned, hash-checked Scalar.

mod assets;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::http::rate_limit;
use crate::http::state::AppState;
use assets::ASSETS;

/// What a console page may load: its own scripts, styles and API (and
/// `data:` images, for inline SVG icons in CSS); nothing inline, no plugins,
/// no `<base>`, forms only to itself, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// A fingerprinted asset never changes under its URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The entry page names the current fingerprint: always revalidated.
const NO_CACHE: &str = "no-cache";

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(entry))
        .route("/console/assets/{fingerprint}/{*path}", get(asset))
        .route("/console/{*other}", get(not_found))
        // Gzip costs little at this size; the same level for brotli compresses better, as quickly.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(6)))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit_per_ip))
        .layer(axum::middleware::from_fn(strict_headers))
}

async fn entry() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, NO_CACHE)];
    (headers, ASSETS.entry.as_str()).into_response()
}

async fn asset(Path((fingerprint, path)): Path<(String, String)>) -> Response {
    match assets::asset(&path) {
        Some((bytes, media_type)) if fingerprint == ASSETS.fingerprint => {
            ([(header::CONTENT_TYPE, media_type), (header::CACHE_CONTROL, IMMUTABLE)], bytes).into_response()
        }
        // Another deployment's fingerprint, or no such file: the page that
        // asked is stale: reloading it names the current assets.
        _ => not_found().await,
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, NO_CACHE)], "no such console page or asset").into_response()
}

async fn strict_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
