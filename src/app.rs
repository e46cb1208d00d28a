//! Assembles the HTTP application: REST API, browser client pages, static files.

use std::path::PathBuf;

use axum::extract::MatchedPath;
use axum::http::{header, HeaderValue, Request};
use axum::routing::any;
use axum::{middleware, Router};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::api::{RateLimiters, RateLimits};
use crate::error::ApiError;
use crate::headers::HeaderPolicy;
use crate::state::AppState;

/// Policy for every response: the browser client is same-origin ES modules only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// HTTP settings of the application: rate limiters and header policy.
#[derive(Clone)]
pub struct HttpOptions {
    /// Rate limiters of the REST routes (their state lives as long as the router).
    pub limiters: RateLimiters,
    /// HSTS and proxy trust.
    pub headers: HeaderPolicy,
}

impl Default for HttpOptions {
    /// Default rate limits, no HSTS, no proxy trusted.
    fn default() -> Self {
        HttpOptions {
            limiters: RateLimiters::new(&RateLimits::default()),
            headers: HeaderPolicy::default(),
        }
    }
}

/// Builds the application router with [`HttpOptions::default`].
pub fn build(state: AppState, static_dir: PathBuf, extra: Router) -> Router {
    build_with(state, static_dir, extra, &HttpOptions::default())
}

/// Builds the application router. `extra` carries routes owned by other layers
/// (the signaling WebSocket, metrics) so this module stays independent of them.
pub fn build_with(
    state: AppState,
    static_dir: PathBuf,
    extra: Router,
    options: &HttpOptions,
) -> Router {
    let (api, _doc) = crate::api::router_with(state, &options.limiters);
    let page = |file: &str| ServeFile::new(static_dir.join(file));
    api.merge(extra)
        .route(
            "/api/{*rest}",
            any(|| async { ApiError::not_found("not_found", "no such route") }),
        )
        .route_service("/", page("index.html"))
        .route_service("/therapist", page("therapist.html"))
        .route_service("/join/{share_token}", page("join.html"))
        .fallback_service(ServeDir::new(&static_dir))
        // Share links carry a secret in the path: never leak it through Referer.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // The client is plain same-origin modules: nothing inline, nothing third-party.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
        ))
        // No-store on /api responses (health data), HSTS over HTTPS.
        .layer(middleware::from_fn_with_state(
            options.headers,
            crate::headers::apply,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // Log the route template, not the URI: URIs can hold share tokens.
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "static".to_string());
                tracing::info_span!("http", method = %req.method(), route = %route)
            }),
        )
}
