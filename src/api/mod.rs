//! The REST layer: routes, their OpenAPI description, and request/response shapes.
//!
//! Every route lives in a module named after what it manages. Routes are registered
//! through `utoipa_axum`, so the OpenAPI document served at `/api/openapi.json` lists
//! exactly the routes the router serves.

mod blog;
mod extract;
mod guard;
mod health;
mod join;
mod notifications;
mod participants;
mod sessions;
mod turn;
mod video_settings;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::JsonBody;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "TheraRoom API", description = "REST API of the TheraRoom telehealth video server. Errors are `{\"error\":{\"code\",\"message\"}}`."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The REST router (with state applied) and its OpenAPI document.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(
            video_settings::get_organization_video_settings,
            video_settings::put_organization_video_settings
        ))
        .routes(routes!(video_settings::list_therapist_video_settings))
        .routes(routes!(video_settings::put_therapist_video_settings))
        .routes(routes!(video_settings::bulk_therapist_video_settings))
        .routes(routes!(blog::list_blog_permissions))
        .routes(routes!(blog::grant_blog_permission))
        .routes(routes!(blog::revoke_blog_permission))
        .routes(routes!(sessions::create_session, sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::end_session))
        .routes(routes!(
            participants::register_participant,
            participants::list_participants
        ))
        .routes(routes!(participants::remove_participant))
        .routes(routes!(join::join_info))
        .routes(routes!(join::guest_token))
        .routes(routes!(turn::turn_credentials))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::mark_read))
        .with_state(state)
        .split_for_parts();
    let doc_json = doc.clone();
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move { axum::Json(doc) }
            }),
        )
        .fallback(|| async { ApiError::not_found("not_found", "no such route") });
    (router, doc)
}
