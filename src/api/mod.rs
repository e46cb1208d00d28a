//! The REST layer: routes, their OpenAPI description, and request/response shapes.
//!
//! Every route lives in a module named after what it manages. Routes are registered
//! through `utoipa_axum`, so the OpenAPI document served at `/api/openapi.json` lists
//! exactly the routes the router serves.

mod account_errors;
mod audit;
mod auth;
mod auth_cookie;
mod blog;
mod csv;
mod denial;
mod doc_limits;
mod extract;
mod free_slots;
mod groups;
mod groups_communities;
mod groups_create;
mod groups_edit;
mod groups_fields;
mod groups_invitations;
mod groups_join;
mod groups_lifecycle;
mod groups_members;
mod groups_read;
mod groups_repair;
mod groups_video;
mod guard;
mod health;
mod invitations;
mod join;
mod notifications;
mod organizations;
mod participants;
mod people;
pub mod rate_limit;
mod schedule;
mod schedule_calendar;
mod schedule_cancel;
mod schedule_confirm;
mod schedule_hold_input;
mod schedule_holds;
mod schedule_hours;
mod schedule_notes;
mod schedule_reschedule;
mod schedule_service_codes;
mod schedule_sessions;
mod sessions;
mod shared_limit;
mod sign_out;
mod turn;
mod video_settings;
mod waiting;
mod webhooks;
mod working_hours;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use extract::{JsonBody, MAX_BODY_BYTES};
pub use rate_limit::{RateLimiters, RateLimits};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "TheraRoom API", description = "REST API of the TheraRoom telehealth video server. Errors are `{\"error\":{\"code\",\"message\"}}`."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody, schedule_hours::HoursRefusalBody))
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

/// The REST router (with state applied) and its OpenAPI document, with fresh rate
/// limiters at the default limits.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    router_with(state, &RateLimiters::new(&RateLimits::default()))
}

/// The REST router and its OpenAPI document, rate-limited by `limiters` (whose state
/// every clone of the router shares).
pub fn router_with(state: AppState, limiters: &RateLimiters) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(
            routes!(sessions::create_session, sessions::list_sessions)
                .layer(limiters.session_creation()),
        )
        .routes(routes!(sessions::get_session, waiting::update_session))
        .routes(routes!(waiting::list_waiting))
        .routes(routes!(waiting::admit_waiting))
        .routes(routes!(waiting::decline_waiting))
        .routes(routes!(sessions::end_session))
        .routes(routes!(
            participants::register_participant,
            participants::list_participants
        ))
        .routes(routes!(participants::remove_participant))
        .routes(routes!(join::join_info).layer(limiters.share_lookups()))
        .routes(routes!(join::guest_token).layer(limiters.guest_tokens()))
        .routes(routes!(turn::turn_credentials))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(sign_out::logout))
        .routes(routes!(auth::me))
        .routes(routes!(organizations::create_organization))
        .routes(routes!(organizations::get_organization))
        .routes(routes!(
            invitations::create_invitation,
            invitations::list_invitations
        ))
        .routes(routes!(invitations::withdraw_invitation))
        .routes(routes!(invitations::inspect_invitation))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(people::list_therapists))
        .routes(routes!(people::get_therapist, people::update_therapist))
        .routes(routes!(people::deactivate_therapist))
        .routes(routes!(people::reactivate_therapist))
        .routes(routes!(people::list_clients))
        .routes(routes!(people::get_client, people::update_client))
        .routes(routes!(people::deactivate_client))
        .routes(routes!(people::reactivate_client))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(schedule_holds::create_hold))
        .routes(routes!(schedule_confirm::confirm_hold))
        .routes(routes!(
            schedule_holds::get_hold,
            schedule_holds::release_hold
        ))
        .routes(routes!(schedule_sessions::list_scheduled_sessions))
        .routes(routes!(schedule_sessions::get_scheduled_session))
        .routes(routes!(schedule_cancel::cancel_scheduled_session))
        .routes(routes!(schedule_sessions::set_attendance))
        .routes(routes!(schedule_service_codes::set_service_code))
        .routes(routes!(schedule_service_codes::list_service_codes))
        .routes(routes!(
            schedule_notes::list_notes,
            schedule_notes::create_note
        ))
        .routes(routes!(schedule_notes::update_note))
        .routes(routes!(schedule_sessions::session_video))
        .routes(routes!(schedule_calendar::unified_schedule))
        .routes(routes!(schedule_calendar::check_conflicts))
        .routes(routes!(
            working_hours::get_working_hours,
            working_hours::put_working_hours
        ))
        .routes(routes!(
            working_hours::list_time_off,
            working_hours::create_time_off
        ))
        .routes(routes!(working_hours::delete_time_off))
        .routes(routes!(free_slots::therapist_availability))
        .routes(routes!(
            groups_communities::create_community,
            groups_communities::list_communities
        ))
        .routes(routes!(
            groups_communities::add_member,
            groups_communities::list_members
        ))
        .routes(routes!(
            groups_create::create_group_session,
            groups_read::list_group_sessions
        ))
        .routes(routes!(groups_read::my_group_sessions))
        .routes(routes!(
            groups_read::get_group_session,
            groups_lifecycle::cancel_group_session,
            groups_edit::update_group_session
        ))
        .routes(routes!(groups_repair::invite_therapist))
        .routes(routes!(groups_repair::reinvite_therapist))
        .routes(routes!(groups_repair::remove_invitation))
        .routes(routes!(groups_lifecycle::complete_group_session))
        .routes(routes!(groups_read::list_group_participants))
        .routes(routes!(groups_members::set_attendance))
        .routes(routes!(groups_join::join_group_session))
        .routes(routes!(groups_members::leave_group_session))
        .routes(routes!(groups_video::group_video_room))
        .routes(routes!(groups_invitations::list_invitations))
        .routes(routes!(groups_invitations::respond_to_invitation))
        .routes(routes!(groups_read::therapist_group_sessions))
        .routes(routes!(
            webhooks::put_webhook,
            webhooks::get_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::export_audit_csv))
        .with_state(state)
        .split_for_parts();
    doc_limits::document_limits(&mut doc);
    let doc_json = doc.clone();
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move { axum::Json(doc) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            limiters.clone(),
            shared_limit::count,
        ))
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    (router, doc)
}
